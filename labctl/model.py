"""The lab model: lab/lab.yaml (stages, services, ports, health, hops) + compose/versions.env, as typed data.

Both runtimes read this; placeholders in `env` and `native.args` are resolved here per runtime so that
the docker and native lab run the very same configuration files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml

from labctl.errors import LabError

RuntimeName = Literal["native", "docker"]

# Where things live inside containers (docker runtime). The repo's folders are bind-mounted under /lab.
DOCKER_REPO = "/lab"
DOCKER_DATA = "/data"

_PLACEHOLDER = re.compile(r"\{([a-z_]+)(?::([A-Za-z0-9_.\-]+))?\}")


@dataclass(frozen=True)
class Port:
    name: str
    host: int
    container: int
    what: str = ""


@dataclass(frozen=True)
class Endpoint:
    """An HTTP endpoint on one of the service's ports (health check or the URL shown to students)."""

    port: str
    path: str = "/"


@dataclass(frozen=True)
class NativeSpec:
    binary: str | None = None  # resolved with labctl.install.resolve_binary
    python_module: str | None = None  # run as `sys.executable -m <module>`
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Service:
    name: str
    layer: int
    title: str
    ports: dict[str, Port]
    health: Endpoint
    url: Endpoint
    config: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    env_when_running: dict[str, dict[str, str]] = field(default_factory=dict)
    native: NativeSpec = field(default_factory=NativeSpec)
    optional: bool = False  # runs without it: no binary natively, no image on Docker
    docker_data: str = DOCKER_DATA
    runtimes: tuple[str, ...] = ("native", "docker")  # e.g. the scrape and query relays run natively only

    def port(self, name: str) -> Port:
        try:
            return self.ports[name]
        except KeyError:
            raise LabError(
                f"service {self.name!r} has no port {name!r}",
                f"valid ports: {', '.join(self.ports)}",
            ) from None


@dataclass(frozen=True)
class Stage:
    name: str
    layer: int
    services: tuple[str, ...]
    adds: str = ""


@dataclass(frozen=True)
class Layer:
    """A layer of the pipeline: the service `labctl check` follows the marker through there."""

    number: int
    service: str
    name: str  # how a student names it (the proxy, the Collector, ...)
    role: str  # what the layer does: instrumentation, collection, storage, visualization

    @property
    def title(self) -> str:
        return f"layer {self.number} · {self.role} ({self.name})"


@dataclass(frozen=True)
class Hop:
    name: str
    source: str
    target_service: str
    target_port: str
    kind: str
    also: tuple[tuple[str, str], ...] = ()
    # Natively the hop goes through another service's port (the scrape or query relay): (service, port).
    native_via: tuple[str, str] | None = None
    layer: int = 1  # where `labctl check` sees the hop's failure first
    network: str | None = None  # Docker: the hop's own compose network

    @property
    def cuttable(self) -> bool:
        """A fault can cut it: natively through its relay, on Docker through its network."""
        return self.native_via is not None and self.network is not None


@dataclass(frozen=True)
class Placement:
    """What placeholders resolve against: the runtime, the chosen host ports, and per-service paths."""

    runtime: RuntimeName
    ports: dict[str, dict[str, int]]  # service -> port name -> host port (native only)
    repo: Path
    data_dirs: dict[str, Path] = field(default_factory=dict)  # native only
    settings: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)  # e.g. grafana_home
    lab_dir: Path | None = None  # the instance's state dir (native: `{local:FILE}` lives under it)


# `labctl up --bind 0.0.0.0` (a classroom server): the services a student opens or points a client at
# listen on every interface. The rest (the Collector, the relays and their control ports) stay on
# loopback: nothing outside the machine needs them, and a relay's control port switches a hop.
BIND_ADDRESSES = ("127.0.0.1", "0.0.0.0")
SHARED_ON_BIND = ("proxy", "model-stub", "prometheus", "grafana")


def bind_host(service: str, settings: dict[str, Any]) -> str:
    """Where a native service listens: loopback, or the lab's `up --bind` address for a shared service."""
    return str(settings.get("bind") or "127.0.0.1") if service in SHARED_ON_BIND else "127.0.0.1"


@dataclass
class LabModel:
    root: Path
    services: dict[str, Service]
    stages: dict[str, Stage]
    hops: list[Hop]
    versions: dict[str, str]
    layers: dict[int, Layer] = field(default_factory=dict)

    def layers_hint(self) -> str:
        """The layers as a student picks one: `1 (proxy), 2 (Collector), ...`."""
        return ", ".join(f"{n} ({layer.name})" for n, layer in self.layers.items())

    def stage(self, name: str) -> Stage:
        try:
            return self.stages[name]
        except KeyError:
            raise LabError(
                f"unknown module {name!r}",
                f"valid modules: {', '.join(self.stages)} (e.g. `labctl up module-1`)",
            ) from None

    def service(self, name: str) -> Service:
        try:
            return self.services[name]
        except KeyError:
            raise LabError(
                f"unknown service {name!r}", f"valid services: {', '.join(self.services)}"
            ) from None

    def distinct_hops(self) -> tuple[Hop, ...]:
        """The hops a fault can be on, in lab.yaml's order. The second scrape hop (the Collector's own
        metrics) shares the first one's relay and network: a fault on one is on both, so it is left out."""
        seen: set[tuple[tuple[str, str] | None, str | None]] = set()
        out = []
        for hop in self.hops:
            key = (hop.native_via and (hop.native_via[0], ""), hop.network)
            if key == (None, None) or key not in seen:
                seen.add(key)
                out.append(hop)
        return tuple(out)

    def cuttable_hops(self) -> tuple[str, ...]:
        """The hops `labctl break network|latency --hop` can cut, in lab.yaml's order."""
        return tuple(hop.name for hop in self.distinct_hops() if hop.cuttable)

    def hop(self, name: str) -> Hop:
        for hop in self.hops:
            if hop.name == name:
                return hop
        raise LabError(f"unknown hop {name!r}", f"valid hops: {', '.join(h.name for h in self.hops)}")

    def stage_services(self, stage: str, runtime: str) -> list[str]:
        """The services a stage runs with this runtime (lab.yaml `runtimes:` leaves some out)."""
        return [s for s in self.stage(stage).services if runtime in self.service(s).runtimes]

    def reach(self, source: str, service: str, port: str) -> tuple[str, str]:
        """The (service, port) `source` connects to natively for service.port: its hop's `native_via`
        relay where lab.yaml gives one, else service.port itself."""
        self.service(service).port(port)
        for hop in self.hops:
            if (hop.source, hop.target_service, hop.target_port) == (
                source,
                service,
                port,
            ) and hop.native_via:
                return hop.native_via
        return service, port

    def default_ports(self) -> dict[str, dict[str, int]]:
        return {s.name: {p.name: p.host for p in s.ports.values()} for s in self.services.values()}

    def ordered(self, names: list[str] | tuple[str, ...]) -> list[str]:
        """Service names sorted by layer (start order); unknown names raise."""
        return sorted(names, key=lambda n: (self.service(n).layer, n))

    # --- placeholders -------------------------------------------------------------------------------

    def resolve(self, text: str, service: str, where: Placement) -> str:
        """Resolve `{listen:PORT}`, `{addr:SVC.PORT}`, `{repo}`, `{data}`... for one service."""

        def sub(match: re.Match[str]) -> str:
            kind, arg = match.group(1), match.group(2)
            return self._placeholder(kind, arg, service, where, match.group(0))

        return _PLACEHOLDER.sub(sub, text)

    def _placeholder(self, kind: str, arg: str | None, service: str, where: Placement, raw: str) -> str:
        svc = self.service(service)
        native = where.runtime == "native"

        def own_port(name: str | None) -> tuple[int, int]:
            if not name:
                raise LabError(f"placeholder {raw} in lab.yaml needs a port name")
            p = svc.port(name)
            return where.ports.get(service, {}).get(name, p.host), p.container

        host = bind_host(service, where.settings)
        if kind == "listen":
            host_port, container_port = own_port(arg)
            return f"{host}:{host_port}" if native else f"0.0.0.0:{container_port}"
        if kind == "listen_host":
            return host if native else "0.0.0.0"
        if kind == "listen_port":
            host_port, container_port = own_port(arg)
            return str(host_port if native else container_port)
        if kind in ("addr", "hop_addr"):
            if not arg or "." not in arg:
                raise LabError(f"placeholder {raw} in lab.yaml must look like {{{kind}:SERVICE.PORT}}")
            other_name, port_name = arg.split(".", 1)
            if kind == "hop_addr" and native:
                # Natively this service's hop to SERVICE.PORT may go through a relay (`native_via`): the
                # client is pointed at the relay, so a fault only switches the relay's mode.
                other_name, port_name = self.reach(service, other_name, port_name)
            other = self.service(other_name)
            p = other.port(port_name)
            if native:
                return f"127.0.0.1:{where.ports.get(other_name, {}).get(port_name, p.host)}"
            return f"{other_name}:{p.container}"
        if kind == "repo":
            return str(where.repo) if native else DOCKER_REPO
        if kind == "data":
            if native:
                if service not in where.data_dirs:
                    raise LabError(f"no data directory known for {service}")
                return str(where.data_dirs[service])
            return svc.docker_data
        if kind == "local":  # a file labctl writes for this service and the service reads at start
            if not arg:
                raise LabError(f"placeholder {raw} in lab.yaml needs a file name")
            if not native:
                return f"/etc/lab-{service}/{arg}"  # compose mounts the folder there
            # No lab instance (a bare placement): no file, the service reads none.
            return str(where.lab_dir / "config" / service / arg) if where.lab_dir else ""
        if kind in ("setting", "optional_setting"):
            if not arg:
                raise LabError(f"placeholder {raw} in lab.yaml needs a setting name")
            if native:
                return str(where.settings.get(arg, ""))
            # Compose interpolates it from the per-instance env file the docker runtime writes; an
            # optional one (e.g. the client auth token, off by default) may be empty.
            return (
                "${LAB_" + arg.upper() + (":-}" if kind == "optional_setting" else ":?generated by labctl}")
            )
        if kind in where.extra:
            return where.extra[kind]
        raise LabError(
            f"unknown placeholder {raw} in lab/lab.yaml (service {service})",
            "use one of {listen:P} {listen_host:P} {listen_port:P} {addr:S.P} {hop_addr:S.P} {repo} {data} "
            "{local:FILE} {setting:N} "
            "{optional_setting:N}",
        )

    def service_env(
        self, service: str, where: Placement, running: list[str] | tuple[str, ...]
    ) -> dict[str, str]:
        """The service's resolved env, plus `env_when_running` extras for services also in the stage."""
        svc = self.service(service)
        env = {k: self.resolve(str(v), service, where) for k, v in svc.env.items()}
        for other, extra in svc.env_when_running.items():
            if other in running:
                env.update({k: self.resolve(str(v), service, where) for k, v in extra.items()})
        return env

    def native_args(self, service: str, where: Placement) -> list[str]:
        return [self.resolve(a, service, where) for a in self.service(service).native.args]


def repo_root() -> Path:
    """The repository (or installed tree) holding lab/, compose/, collector-configs/, dashboards/."""
    here = Path(__file__).resolve().parent.parent
    if (here / "lab" / "lab.yaml").is_file():
        return here
    cwd = Path.cwd()
    for cand in (cwd, *cwd.parents):
        if (cand / "lab" / "lab.yaml").is_file():
            return cand
    raise LabError(
        "cannot find the lab files (lab/lab.yaml)",
        "run labctl from a checkout of the lab repository (pip install -e . inside it)",
    )


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (compose's env-file format, without interpolation); # comments ignored."""
    out: dict[str, str] = {}
    for num, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise LabError(f"{path}:{num}: expected KEY=VALUE, got {line!r}", "fix or remove that line")
        key, value = line.split("=", 1)
        out[key.strip()] = value.strip().strip('"').strip("'")
    return out


def _port(name: str, raw: Any, svc: str) -> Port:
    if not isinstance(raw, dict) or "host" not in raw or "container" not in raw:
        raise LabError(f"lab.yaml: port {svc}.{name} needs host and container numbers")
    return Port(
        name=name, host=int(raw["host"]), container=int(raw["container"]), what=str(raw.get("what", ""))
    )


def _endpoint(raw: Any, svc: str, what: str, ports: dict[str, Port]) -> Endpoint:
    if not isinstance(raw, dict) or raw.get("port") not in ports:
        raise LabError(f"lab.yaml: {svc}.{what} must name one of its ports ({', '.join(ports)})")
    return Endpoint(port=str(raw["port"]), path=str(raw.get("path", "/")))


def _service(name: str, raw: dict[str, Any]) -> Service:
    ports = {p: _port(p, v, name) for p, v in (raw.get("ports") or {}).items()}
    native_raw = raw.get("native") or {}
    return Service(
        name=name,
        layer=int(raw["layer"]),
        title=str(raw.get("title", name)),
        ports=ports,
        health=_endpoint(raw.get("health"), name, "health", ports),
        url=_endpoint(raw.get("url") or raw.get("health"), name, "url", ports),
        config=tuple(raw.get("config") or ()),
        env={str(k): str(v) for k, v in (raw.get("env") or {}).items()},
        env_when_running={
            str(o): {str(k): str(v) for k, v in (e or {}).items()}
            for o, e in (raw.get("env_when_running") or {}).items()
        },
        native=NativeSpec(
            binary=native_raw.get("binary"),
            python_module=native_raw.get("python_module"),
            args=tuple(str(a) for a in native_raw.get("args") or ()),
        ),
        optional=bool(raw.get("optional", False)),
        docker_data=str((raw.get("docker") or {}).get("data", DOCKER_DATA)),
        runtimes=tuple(str(r) for r in raw.get("runtimes") or ("native", "docker")),
    )


def _hop(raw: dict[str, Any]) -> Hop:
    def split(target: str) -> tuple[str, str]:
        svc, _, port = str(target).partition(".")
        return svc, port

    svc, port = split(raw["to"])
    via = raw.get("native_via")
    return Hop(
        name=str(raw["name"]),
        source=str(raw["from"]),
        target_service=svc,
        target_port=port,
        kind=str(raw.get("kind", "push")),
        also=tuple(split(a) for a in raw.get("also") or ()),
        native_via=split(via) if via else None,
        layer=int(raw["layer"]),
        network=str(raw["network"]) if raw.get("network") else None,
    )


def parse_model(root: Path) -> LabModel:
    path = root / "lab" / "lab.yaml"
    try:
        # libyaml's loader where PyYAML has it: every labctl command reads this file, and the pure-Python
        # loader spends about 40 ms of CPU on it.
        data = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise LabError(f"{path} is not valid YAML: {exc}", "fix the file (see the line above)") from None
    except OSError as exc:
        raise LabError(f"cannot read {path}: {exc}", "run labctl from a checkout of the lab") from None
    try:
        services = {n: _service(n, s) for n, s in data["services"].items()}
        stages = {
            n: Stage(
                name=n, layer=int(s["layer"]), services=tuple(s["services"]), adds=str(s.get("adds", ""))
            )
            for n, s in data["stages"].items()
        }
        hops = [_hop(h) for h in data.get("hops") or []]
        layers = {
            int(n): Layer(int(n), str(raw["service"]), str(raw["name"]), str(raw["role"]))
            for n, raw in sorted((data.get("layers") or {}).items())
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise LabError(
            f"{path}: malformed entry ({exc!r})", "compare with the documented structure"
        ) from None
    for stage in stages.values():
        for s in stage.services:
            if s not in services:
                raise LabError(f"{path}: stage {stage.name} names unknown service {s!r}")
    for layer in layers.values():
        if layer.service not in services:
            raise LabError(f"{path}: layer {layer.number} names unknown service {layer.service!r}")
    for svc in services.values():
        if not set(svc.runtimes) <= {"native", "docker"}:
            raise LabError(
                f"{path}: service {svc.name} has runtimes {list(svc.runtimes)}", "use native and/or docker"
            )
    versions = read_env_file(root / "compose" / "versions.env")
    return LabModel(root=root, services=services, stages=stages, hops=hops, versions=versions, layers=layers)


@lru_cache(maxsize=4)
def _cached(root: Path) -> LabModel:
    return parse_model(root)


def load_model(repo_root_path: Path | None = None) -> LabModel:
    return _cached((repo_root_path or repo_root()).resolve())
