"""The proxy's local settings: a JSON file of env values it reads over its environment at each start.

lab.yaml points LAB_PROXY_LOCAL_ENV at it (natively under the instance's state dir, on Docker the same
folder mounted at /etc/lab-proxy). The runtime writes the proxy's override env there (a fault's, e.g. an
upstream URL the proxy refuses), so applying or removing it is a restart of the same container: on
Docker a new environment would mean recreating the container (seconds of compose under load), and
`docker inspect` would show the setting. `{}` when nothing is overridden.

A running proxy restarts itself on request (POST /api/restart: the same command again in the same
process), which is how the Docker runtime applies the file while the proxy answers: the engine's stop
and start would add about a second (network and published ports set up again).
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


def ask_restart(admin_url: str, headers: dict[str, str], quiet: bool = False) -> bool | None:
    """POST /api/restart: True when the proxy took the request (it stops once it answered), False when
    it answered otherwise (an older proxy without the route), None when nothing answered."""
    from labctl.runtimes.base import http_json

    answer = http_json(admin_url + "/api/restart" + ("?quiet=1" if quiet else ""), "POST", headers, 2.0)
    return None if answer is None else answer[0] == 202


def uptime(admin_url: str, headers: dict[str, str]) -> float | None:
    """The running proxy's uptime in seconds (/api/stats, 0.1 s steps); None when nothing answers."""
    from labctl.runtimes.base import http_json

    answer = http_json(admin_url + "/api/stats", headers=headers)
    if answer is None or answer[0] != 200 or not isinstance(answer[1], dict):
        return None
    value = answer[1].get("uptime_s")
    return float(value) if isinstance(value, (int, float)) else None
