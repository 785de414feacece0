"""The OS package of Prometheus: suggested only when its major version is the lab's.

The lab's rules, configs and docker image are Prometheus 3; an older major (Debian 12 ships 2.42)
would start with different defaults and flags, so it is refused with the reason, never suggested.
"""

from __future__ import annotations

import re
import shutil
import subprocess


def apt_candidate(package: str) -> str | None:
    """The version apt would install (`apt-cache policy`, no network, no root), or None."""
    apt_cache = shutil.which("apt-cache")
    if not apt_cache:
        return None
    try:
        out = subprocess.run(
            [apt_cache, "policy", package], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"^\s*Candidate:\s*(\S+)", out.stdout, re.MULTILINE)
    if not match or match.group(1) == "(none)":
        return None
    return match.group(1)


def upstream_version(package_version: str) -> str:
    """`1:2.42.0+ds-5+deb12u1` -> `2.42.0` (no epoch, no Debian revision or repack suffix)."""
    version = package_version.split(":", 1)[-1]
    return re.split(r"[+~-]", version, maxsplit=1)[0]


def advice(package: str, package_version: str | None, wanted: str) -> str | None:
    """One sentence about the OS package, or None when there is none."""
    if not package_version:
        return None
    have = upstream_version(package_version)
    if have.split(".")[0] == wanted.split(".")[0]:
        return (
            f"the OS package {package} {have} is the same major version as the lab's {wanted}: "
            f"`sudo apt-get install {package}` puts it on PATH, where labctl finds it"
        )
    return (
        f"the OS package {package} {have} is not offered: it is Prometheus {have.split('.')[0]}, while the "
        f"lab's configs, rules and docker image are Prometheus {wanted} (major {wanted.split('.')[0]})"
    )
