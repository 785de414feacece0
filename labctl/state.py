"""A lab instance's state: one directory with lab.json (runtime, stage, ports, faults, settings) and
services/<name>/ (pid, log, data). Every command after `up` reads the chosen ports from here.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import secrets
import socket
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labctl import invocation
from labctl.errors import LabError
from labctl.faults.records import ActiveFault

DEFAULT_INSTANCE = "default"
# lab.json's shape. Raise it whenever the shape changes: a lab started by another labctl is refused with
# the fix (`labctl down`) instead of being read half right. 2: typed fault records (labctl/faults/records.py).
SCHEMA = 2


def configure(state_dir: Path | None = None, instance: str | None = None, runtime: str | None = None) -> None:
    """Start an invocation with these global options (--state-dir, --instance, --runtime)."""
    invocation.begin(state_dir=state_dir, instance=instance, runtime=runtime)


def override_runtime(runtime: str) -> None:
    """`labctl up module-3 --runtime native`: the command's own option wins over the global one."""
    if runtime not in ("docker", "native", "auto"):
        raise LabError(f"unknown runtime {runtime!r}", "use docker, native or auto")
    invocation.update(runtime=runtime)


def instance_name() -> str:
    name = invocation.current().instance or os.environ.get("LABCTL_INSTANCE") or DEFAULT_INSTANCE
    if not name.replace("-", "").replace("_", "").isalnum():
        raise LabError(f"invalid instance name {name!r}", "use letters, digits, - and _ only")
    return name


def requested_runtime() -> str:
    return invocation.current().runtime or os.environ.get("LABCTL_RUNTIME") or "auto"


def state_dir() -> Path:
    explicit = invocation.current().state_dir or os.environ.get("LABCTL_STATE_DIR")
    if explicit:
        return Path(explicit).expanduser().resolve()
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return (base / "labctl" / instance_name()).resolve()


@dataclass
class LabState:
    dir: Path
    runtime: str = "native"
    stage: str | None = None
    instance: str = DEFAULT_INSTANCE
    ports: dict[str, dict[str, int]] = field(default_factory=dict)
    faults: dict[str, ActiveFault] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    # service -> {"extra_configs": [paths], "env": {k: v}}; set by runtime.set_overrides (faults use it)
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Read from a lab.json of another schema (`load(salvage=True)`): its faults were left behind.
    salvaged: bool = field(default=False, compare=False)

    # --- persistence --------------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self.dir / "lab.json"

    @classmethod
    def load(cls, directory: Path | None = None, salvage: bool = False) -> LabState:
        """The lab's state. A state of another schema is refused with the fix; `salvage` (for `labctl
        down` only) reads what stopping needs from it (runtime, instance, ports) and leaves its faults and
        overrides behind, which this labctl cannot read."""
        directory = (directory or state_dir()).resolve()
        path = directory / "lab.json"
        if not path.is_file():
            raise LabError(
                f"no lab is running (no {path})",
                "run `labctl up module-1` first (or pass the --state-dir used)",
            )
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise LabError(
                f"lab state {path} is unreadable: {exc}",
                "run `labctl down` to clear it, then `labctl up <module>` again",
            ) from None
        if data.get("schema") != SCHEMA:
            if salvage:
                return cls._salvaged(directory, data)
            raise LabError(
                f"the lab in {directory} was started by another version of labctl (state schema "
                f"{data.get('schema', 'none')}, this labctl reads {SCHEMA})",
                "run `labctl down` to stop it and drop its faults, then `labctl up <module>` again",
            )
        known = {f for f in cls.__dataclass_fields__ if f not in ("dir", "faults", "salvaged")}
        lab = cls(dir=directory, **{k: v for k, v in data.items() if k in known})
        entries = {**(data.get("faults") or {}), **unseal(data.get("sealed", ""))}
        try:
            lab.faults = {name: ActiveFault.from_json(entry) for name, entry in entries.items()}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise LabError(
                f"lab state {path} holds an unreadable fault record ({exc})",
                "run `labctl down` to clear it, then `labctl up <module>` again",
            ) from None
        return lab

    @classmethod
    def _salvaged(cls, directory: Path, data: dict[str, Any]) -> LabState:
        keep = {"runtime", "stage", "instance", "ports", "settings"}
        kept = {k: v for k, v in data.items() if k in keep and v is not None}
        return cls(dir=directory, salvaged=True, **kept)

    def hidden_faults(self) -> dict[str, ActiveFault]:
        """The blind challenge's faults (`labctl break --hidden`): nothing may name them."""
        return {n: e for n, e in self.faults.items() if e.hidden}

    @classmethod
    def current(cls) -> LabState:
        """The running lab of this invocation's --state-dir/--instance; LabError when none is up."""
        lab = cls.load()
        if not lab.stage:
            raise LabError("no lab is running", "run `labctl up module-1` first")
        return lab

    @classmethod
    def exists(cls, directory: Path | None = None) -> bool:
        return ((directory or state_dir()) / "lab.json").is_file()

    def save(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        data = {
            f: getattr(self, f) for f in self.__dataclass_fields__ if f not in ("dir", "faults", "salvaged")
        }
        data["schema"] = SCHEMA
        # Hidden faults (`labctl break --hidden`) are kept sealed, so that a look at lab.json does not
        # give the exercise away. An obfuscation against glancing, not a secret: see labctl/faults/blind.py.
        data["faults"] = {n: e.to_json() for n, e in self.faults.items() if not e.hidden}
        hidden = {n: e.to_json() for n, e in self.faults.items() if e.hidden}
        if hidden:
            data["sealed"] = seal(hidden)
        # Atomic replace: a reader in another process never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".lab.", suffix=".json")
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
        os.replace(tmp, self.path)

    def reload(self) -> LabState:
        return LabState.load(self.dir)

    # --- addresses ------------------------------------------------------------------------------------

    def port(self, service: str, port_name: str) -> int:
        try:
            return int(self.ports[service][port_name])
        except KeyError:
            raise LabError(
                f"no port {service}.{port_name} in this lab",
                f"known: {', '.join(f'{s}.{p}' for s, ps in self.ports.items() for p in ps)}",
            ) from None

    def addr(self, service: str, port_name: str) -> str:
        return f"127.0.0.1:{self.port(service, port_name)}"

    def url(self, service: str, port_name: str) -> str:
        return f"http://{self.addr(service, port_name)}"

    def admin_headers(self) -> dict[str, str]:
        """What labctl sends to the proxy's admin API: the lab's token when auth is on (`up --auth`)."""
        token = self.settings.get("auth_token") if self.settings.get("auth_enabled") else None
        return {"Authorization": f"Bearer {token}"} if token else {}

    # --- files ----------------------------------------------------------------------------------------

    def service_dir(self, service: str) -> Path:
        return self.dir / "services" / service

    def data_dir(self, service: str) -> Path:
        return self.service_dir(service) / "data"

    def log_path(self, service: str) -> Path:
        return self.service_dir(service) / f"{service}.log"

    def pid_path(self, service: str) -> Path:
        return self.service_dir(service) / f"{service}.pid"

    def ensure_secret(self, name: str, nbytes: int = 18) -> str:
        """A generated secret kept in settings (e.g. Grafana's admin password); created once."""
        if not self.settings.get(name):
            self.settings[name] = secrets.token_urlsafe(nbytes)
        return str(self.settings[name])


def seal(value: Any) -> str:
    return base64.b64encode(zlib.compress(json.dumps(value, sort_keys=True).encode())).decode()


def unseal(text: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(zlib.decompress(base64.b64decode(text)))
    except (ValueError, zlib.error):
        raise LabError(
            "the lab state's hidden faults are unreadable (lab.json `sealed` was edited)",
            "run `labctl down` to clear the lab, then `labctl up <module>` again",
        ) from None
    return value if isinstance(value, dict) else {}


@contextlib.contextmanager
def lifecycle_lock(directory: Path) -> Iterator[None]:
    """One `up`/`down` at a time per lab: a second one waits instead of racing on pids and ports."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            from labctl import ui

            ui.warn(f"another labctl up/down is running on {directory}; waiting for it to finish")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# Test suites set LAB_PORT_POOL=<cursor file>:<low>-<high> (tests/conftest.py). A port the kernel hands
# out for port 0 comes from the ephemeral range, where it can be handed out again, or become some
# connection's source port, between our close and the server's bind: a parallel suite saw "address
# already in use". A pool below that range, walked by one cursor shared under a file lock, gives a
# port again only after every other port of the pool, whichever process asks.
PORT_POOL_ENV = "LAB_PORT_POOL"


def find_free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Distinct free ports on `host`: all sockets stay open until every port is chosen, so none repeats."""
    pool = os.environ.get(PORT_POOL_ENV)
    if pool:
        return _ports_from_pool(pool, count, host)
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _parse_pool(spec: str) -> tuple[Path, int, int]:
    path, _, span = spec.rpartition(":")
    low, _, high = span.partition("-")
    try:
        lo, hi = int(low), int(high)
    except ValueError:
        lo = hi = 0
    if not path or not 1024 <= lo < hi <= 65535:
        raise LabError(
            f"{PORT_POOL_ENV}={spec!r} is not <file>:<low>-<high>",
            f"unset {PORT_POOL_ENV}, or set it like /tmp/ports:10000-32000",
        )
    return Path(path), lo, hi


def _ports_from_pool(spec: str, count: int, host: str) -> list[int]:
    path, lo, hi = _parse_pool(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    chosen: list[int] = []
    with path.open("a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        text = fh.read().strip()
        port = int(text) if text.isdigit() and lo <= int(text) <= hi else lo
        for _ in range(hi - lo + 1):
            if len(chosen) == count:
                break
            candidate, port = port, (lo if port >= hi else port + 1)
            # Without SO_REUSEADDR the bind fails also for a port some connection still holds.
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind((host, candidate))
                except OSError:
                    continue
            chosen.append(candidate)
        fh.seek(0)
        fh.truncate()
        fh.write(str(port))
    if len(chosen) < count:
        raise LabError(f"no {count} free ports left in {PORT_POOL_ENV} {lo}-{hi}", "widen the range")
    return chosen


def free_port(host: str = "127.0.0.1") -> int:
    return find_free_ports(1, host)[0]


def allocate_ports(
    defaults: dict[str, dict[str, int]], offset: int = 0, free: bool = False
) -> dict[str, dict[str, int]]:
    """Host ports for every service: the model's defaults, shifted by --port-offset, or all free (tests)."""
    if free:
        flat = [(s, p) for s, ports in defaults.items() for p in ports]
        chosen = find_free_ports(len(flat))
        out: dict[str, dict[str, int]] = {s: {} for s in defaults}
        for (s, p), port in zip(flat, chosen, strict=True):
            out[s][p] = port
        return out
    result = {s: {p: n + offset for p, n in ports.items()} for s, ports in defaults.items()}
    bad = [f"{s}.{p}={n}" for s, ps in result.items() for p, n in ps.items() if not 1 <= n <= 65535]
    if bad:
        raise LabError(
            f"--port-offset {offset} gives invalid ports: {', '.join(bad)}", "use a smaller offset"
        )
    return result
