"""Download a release archive, check it against its project's published SHA-256, unpack it safely.

Nothing is unpacked before the checksum matches, and nothing outside the target folder is ever
written: members with absolute paths, `..`, links leaving the folder or device files are refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path, PurePosixPath

from rich.console import Console

from labctl.errors import LabError
from labctl.install.gobuild import ProgressFn

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


class DownloadError(LabError):
    """The file could not be fetched (network, HTTP status): the caller's hint says what else to do."""


def timeout() -> float:
    """Seconds to wait for a connection or a stalled read (`LABCTL_DOWNLOAD_TIMEOUT`, default 30)."""
    try:
        return float(os.environ.get("LABCTL_DOWNLOAD_TIMEOUT", "30"))
    except ValueError as exc:
        raise LabError("LABCTL_DOWNLOAD_TIMEOUT is not a number", "set it to seconds, e.g. 30") from exc


def _mb(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB"


def fetch(url: str, dest: Path, *, what: str, hint: str, progress: ProgressFn | None = None) -> int:
    """Stream `url` into `dest` with progress; return the byte count. DownloadError names the URL."""
    request = urllib.request.Request(url, headers={"User-Agent": "labctl"})
    done = 0
    with contextlib.ExitStack() as stack:
        if progress is None:
            progress = stack.enter_context(Console(stderr=True).status(f"downloading {what}…")).update
        progress(f"downloading {what}…")
        try:
            resp = stack.enter_context(urllib.request.urlopen(request, timeout=timeout()))
            total = int(resp.headers.get("Content-Length") or 0)
            out = stack.enter_context(dest.open("wb"))
            last = 0.0
            while chunk := resp.read(1 << 16):
                out.write(chunk)
                done += len(chunk)
                if time.monotonic() - last > 0.25:
                    last = time.monotonic()
                    progress(f"downloading {what}: {_mb(done)}" + (f" of {_mb(total)}" if total else ""))
        except urllib.error.HTTPError as exc:
            raise DownloadError(
                f"downloading {url} failed: the server answered {exc.code} {exc.reason}", hint
            ) from None
        except (urllib.error.URLError, OSError) as exc:  # DNS, refused, reset, timeout
            raise DownloadError(f"could not download {url}: {_why(url, exc)}", hint) from None
    return done


def _why(url: str, exc: BaseException) -> str:
    """The network failure in words a student can act on."""
    reason = getattr(exc, "reason", None) or exc
    host = urllib.parse.urlsplit(url).netloc
    if isinstance(reason, socket.gaierror):
        return f"the name {urllib.parse.urlsplit(url).hostname} cannot be resolved (no internet access or DNS here?)"
    if isinstance(reason, ConnectionRefusedError):
        return f"connection refused by {host} (is the mirror running?)"
    if isinstance(reason, TimeoutError | socket.timeout):
        return f"no answer from {host} within {timeout():.0f}s (LABCTL_DOWNLOAD_TIMEOUT)"
    return str(reason)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def expected_sha256(text: str, filename: str, source: str) -> str:
    """The digest for `filename` in a checksum file.

    Accepts the `sha256sum` layout (`<hex>  <name>` or `<hex> *<name>`, one line per file, as
    goreleaser's checksums.txt and Prometheus' sha256sums.txt are) and a lone `<hex>` (a `.sha256`
    file published next to one archive, as Grafana does).
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        parts = line.split()
        if (
            len(parts) >= 2
            and parts[-1].lstrip("*").removeprefix("./") == filename
            and _HEX64.match(parts[0])
        ):
            return parts[0].lower()
    if len(lines) == 1 and len(lines[0].split()) == 1 and _HEX64.match(lines[0]):
        return lines[0].lower()
    raise LabError(
        f"the checksum file {source} has no SHA-256 for {filename}",
        "the mirror or release is incomplete: get the checksum file published with this release",
    )


def verify(path: Path, expected: str, *, url: str, checksum_url: str, hint: str) -> str:
    actual = sha256_of(path)
    if actual != expected:
        raise LabError(
            f"checksum mismatch for {url}: expected SHA-256 {expected} (from {checksum_url}), got {actual}; "
            "nothing was installed",
            "the download is corrupt or not the published file: retry, or check the mirror; " + hint,
        )
    return actual


def _inside(root: Path, target: Path) -> bool:
    return target == root or root in target.parents


def _check_member(member: tarfile.TarInfo, root: Path, archive: str) -> None:
    name = member.name
    parts = PurePosixPath(name).parts
    refuse = None
    if name.startswith(("/", "\\")) or PurePosixPath(name).is_absolute():
        refuse = "an absolute path"
    elif ".." in parts:
        refuse = "a `..` path"
    elif not _inside(root, (root / name).resolve()):
        refuse = "a path outside the target folder"
    elif member.issym():
        link = PurePosixPath(member.linkname)
        if link.is_absolute() or not _inside(root, (root / name).parent.joinpath(member.linkname).resolve()):
            refuse = f"a symlink to {member.linkname}"
    elif member.islnk():
        if PurePosixPath(member.linkname).is_absolute() or not _inside(
            root, (root / member.linkname).resolve()
        ):
            refuse = f"a hard link to {member.linkname}"
    elif not (member.isfile() or member.isdir()):
        refuse = "a device or special file"
    if refuse:
        raise LabError(
            f"refusing to unpack {archive}: member {name!r} is {refuse}; nothing was installed",
            "the archive is not a genuine release archive: get it again from the project's release page",
        )


def safe_extract(archive: Path, dest: Path) -> None:
    """Unpack a .tar.gz into `dest` (created), after checking every member."""
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = tar.getmembers()
            for member in members:
                _check_member(member, root, archive.name)
            if hasattr(tarfile, "data_filter"):  # Python 3.11.4+: the stdlib's own guard as well
                tar.extractall(root, members=members, filter="data")
            else:  # pragma: no cover - older 3.11 patch releases
                tar.extractall(root, members=members)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise LabError(
            f"{archive.name} could not be unpacked: {exc}",
            "the file is damaged or not a .tar.gz: run the install again",
        ) from None
