"""The proxy's local settings: a JSON file of env values it reads over its environment at each start.

lab.yaml points LAB_PROXY_LOCAL_ENV at it (natively under the instance's state dir, on Docker the same
folder mounted at /etc/lab-proxy). The runtime writes the proxy's override env there (a fault's, e.g. an
upstream URL the proxy refuses), so applying or removing it is a restart of the same container: on
Docker a new environment would mean recreating the container (seconds of compose under load), and
`docker inspect` would show the setting. `{}` when nothing is overridden.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

FILE = "local.json"


def path(lab_dir: Path) -> Path:
    return lab_dir / "config" / "proxy" / FILE  # lab.yaml: {local:local.json}


def write(lab_dir: Path, env: dict[str, str]) -> bool:
    """Write the proxy's override env; True when the file's content changed."""
    target = path(lab_dir)
    text = json.dumps(dict(sorted(env.items())), indent=1) + "\n"
    if target.exists() and target.read_text() == text:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{FILE}.tmp")
    tmp.write_text(text)
    tmp.chmod(0o644)  # the proxy's container runs as its own user
    os.replace(tmp, target)
    return True
