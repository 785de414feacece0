"""What an active fault changed, as typed records kept in lab.json `faults`.

Every fault's `apply` returns one record class of this module; `heal` undoes exactly that record, so
lab.json alone is enough for another shell (or a later `labctl heal`) to restore the lab. Each record
also knows two things the fault table needs without running the fault:

  summary()    what changed, in neutral words (blind mode and plain `break` never name the mechanism)
  forget(lab)  undo the record in the lab's *state* only, without touching a process (`labctl down`:
               the next `up` must start the lab as it was before the fault)

A new fault adds its record class here (a dataclass with a `kind` tag registered by `@record`) and
returns it from `apply`. The JSON form is the dataclass's fields plus `kind`; lab.json carries a schema
version (labctl/state.py), so a record never has to read an older shape.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from labctl.errors import LabError

if TYPE_CHECKING:
    from labctl.state import LabState

# Env keys through which a fault re-points the proxy's upstream (a restart with another exporter target).
UPSTREAM_ENV = frozenset({"LAB_PROXY_UPSTREAM", "LAB_PROXY_UPSTREAM_PROTOCOL", "LAB_PROXY_UPSTREAM_HEADERS"})


class FaultRecord:
    """Base of every record: JSON round trip by `kind`, a neutral summary, a state-only forget."""

    kind: ClassVar[str] = ""

    def summary(self) -> str:
        raise NotImplementedError

    def forget(self, lab: LabState) -> None:
        """Nothing to undo in the state by default (a process fault, a runtime-only change)."""

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}  # type: ignore[call-overload]

    @staticmethod
    def from_json(data: dict[str, Any]) -> FaultRecord:
        kind = data.get("kind")
        cls = _KINDS.get(str(kind))
        if cls is None:
            raise LabError(
                f"the lab state holds a fault record of unknown kind {kind!r}",
                "run `labctl down` to clear the lab, then `labctl up <module>` again",
            )
        return cls._parse({k: v for k, v in data.items() if k != "kind"})

    @classmethod
    def _parse(cls, data: dict[str, Any]) -> FaultRecord:
        return cls(**data)


_KINDS: dict[str, type[FaultRecord]] = {}
R = TypeVar("R", bound=type[FaultRecord])


def record(cls: R) -> R:
    """Register a record class under its `kind` (the tag its JSON carries)."""
    if not cls.kind or cls.kind in _KINDS:
        raise TypeError(f"record class {cls.__name__} needs a unique kind, got {cls.kind!r}")
    _KINDS[cls.kind] = cls
    return cls


# --- the parts records share ---------------------------------------------------------------------


@dataclass
class OverrideUndo:
    """What `FaultContext.add_overrides` changed on one service: enough to take exactly that away."""

    service: str
    env_before: dict[str, str | None] = field(default_factory=dict)
    configs_added: list[str] = field(default_factory=list)
    was_running: bool = False
    start_error: str | None = None  # the restart failed, and that is the fault (e.g. an invalid URL)

    def without(self, current: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
        """The service's overrides (extra configs, env) as they were before this change."""
        env = dict(current.get("env", {}))
        for key, old in self.env_before.items():
            if old is None:
                env.pop(key, None)
            else:
                env[key] = old
        configs = [c for c in current.get("extra_configs", []) if c not in self.configs_added]
        return configs, env

    def forget(self, lab: LabState) -> None:
        configs, env = self.without(lab.overrides.get(self.service, {}))
        if env or configs:
            lab.overrides[self.service] = {"extra_configs": configs, "env": env}
        else:
            lab.overrides.pop(self.service, None)

    def summary(self) -> str:
        if set(self.env_before) & UPSTREAM_ENV:
            return f"{self.service} upstream changed"
        if self.configs_added:
            return f"{self.service} configuration changed"
        return f"{self.service} settings changed"


@dataclass
class Route:
    """One hop a switched relay carries: its address, the real target, and how heal proves it."""

    addr: str
    target: str
    hop: str
    client: str
    service: str
    path: str
    kind: str


UPSTREAM_RUNTIME = "proxy upstream changed (at runtime, no restart)"


def _join(parts: list[str]) -> str:
    return ", ".join(dict.fromkeys(p for p in parts if p)) or "lab changed"


# --- one record class per way a fault changes the lab --------------------------------------------


@record
@dataclass
class RelaySwitch(FaultRecord):
    """`network`/`latency` natively: a hop's permanent relay switched mode through its control API."""

    kind: ClassVar[str] = "relay-switch"
    hop: str
    mode: str
    latency_ms: int
    relay: str  # the relay service (lab.yaml `native_via`)
    control: str
    routes: list[Route] = field(default_factory=list)
    pid: int | None = None

    @classmethod
    def _parse(cls, data: dict[str, Any]) -> RelaySwitch:
        routes = [Route(**r) for r in data.pop("routes", [])]
        return cls(routes=routes, **data)

    def summary(self) -> str:
        return f"{self.relay} switched (at runtime, no restart)"

    def forget(self, lab: LabState) -> None:
        # The relay keeps its mode in a file: the next `up` must start it in pass.
        from labctl.faults.relay_switch import reset_saved_mode

        reset_saved_mode(lab, self.relay)


@record
@dataclass
class DockerCut(FaultRecord):
    """`network` on Docker: the hop's target left the hop's network; a stand-in answers for it."""

    kind: ClassVar[str] = "docker-cut"
    hop: str
    mode: str
    service: str
    network: str
    container: str
    stand_in: str

    def summary(self) -> str:
        return f"{self.service}'s network changed"

    # forget: nothing in the state; `down` removes the stand-in with the project (it carries its labels).


@record
@dataclass
class UpstreamFault(FaultRecord):
    """`endpoint`: the proxy's upstream re-pointed, at runtime (admin API) or through its env (restart)."""

    kind: ClassVar[str] = "upstream"
    endpoint_kind: str  # unreachable-host, wrong-port, protocol-mismatch, invalid-url
    env: dict[str, str]
    overrides: list[OverrideUndo] = field(default_factory=list)
    upstream_change: dict[str, Any] | None = None

    @classmethod
    def _parse(cls, data: dict[str, Any]) -> UpstreamFault:
        overrides = [OverrideUndo(**u) for u in data.pop("overrides", [])]
        return cls(overrides=overrides, **data)

    def summary(self) -> str:
        return _join(
            [u.summary() for u in self.overrides] + [UPSTREAM_RUNTIME if self.upstream_change else ""]
        )

    def forget(self, lab: LabState) -> None:
        for undo in self.overrides:
            undo.forget(lab)


@record
@dataclass
class AuthFault(FaultRecord):
    """`auth`: the Collector requires a token (overlay + env); the running proxy sends a wrong one."""

    kind: ClassVar[str] = "auth"
    token: str  # what the proxy sends: wrong or missing
    upstream: str
    secret: str  # the token the Collector accepts (verify proves it does)
    collector: OverrideUndo
    upstream_change: dict[str, Any]

    @classmethod
    def _parse(cls, data: dict[str, Any]) -> AuthFault:
        return cls(collector=OverrideUndo(**data.pop("collector")), **data)

    def summary(self) -> str:
        return _join([self.collector.summary(), UPSTREAM_RUNTIME])

    def forget(self, lab: LabState) -> None:
        self.collector.forget(lab)


@record
@dataclass
class ProcessFault(FaultRecord):
    """`collector-crash` (a signal) and `storage-down` (a stop): a service's process is gone."""

    kind: ClassVar[str] = "process"
    service: str
    signal: str | None = None

    def summary(self) -> str:
        return f"{self.service} process changed"


@record
@dataclass
class ConfigOverlay(FaultRecord):
    """One service's configuration changed through the runtime's overrides: extra config files or env
    (`memory-pressure`, the Collector's and Grafana's configuration traps)."""

    kind: ClassVar[str] = "config-overlay"
    service: str
    undo: OverrideUndo
    scratch: str | None = None  # a folder the fault wrote its files to: removed on heal and forget

    @classmethod
    def _parse(cls, data: dict[str, Any]) -> ConfigOverlay:
        return cls(undo=OverrideUndo(**data.pop("undo")), **data)

    def summary(self) -> str:
        return self.undo.summary()

    def forget(self, lab: LabState) -> None:
        self.undo.forget(lab)
        self.remove_scratch()

    def remove_scratch(self) -> None:
        if self.scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)


@record
@dataclass
class TargetsRewrite(FaultRecord):
    """`scrape-path`: Prometheus' file_sd target files rewritten; the originals are kept here."""

    kind: ClassVar[str] = "targets-rewrite"
    targets_dir: str
    originals: dict[str, str]  # file name -> its text before the fault

    def summary(self) -> str:
        return "Prometheus scrape targets changed"

    def restore(self) -> None:
        for name, text in self.originals.items():
            path = Path(self.targets_dir) / name
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(text)
            tmp.replace(path)  # atomic: Prometheus never reads half a file

    def forget(self, lab: LabState) -> None:
        self.restore()


@record
@dataclass
class RulesCopy(FaultRecord):
    """`broken-rules`: the data dir's link to the repository's rules replaced by a broken copy."""

    kind: ClassVar[str] = "rules-copy"
    rules_dir: str  # the link Prometheus reads its rules through
    source: str  # where it pointed (the repository's rules)
    reload: list[Any]  # what POST /-/reload answered: [status, text]

    def summary(self) -> str:
        return "Prometheus rules changed"

    def restore(self) -> None:
        link = Path(self.rules_dir)
        if link.is_symlink():
            link.unlink()
        elif link.is_dir():
            shutil.rmtree(link)
        link.symlink_to(self.source)

    def forget(self, lab: LabState) -> None:
        self.restore()


@record
@dataclass
class ContractVariant(FaultRecord):
    """`contract`/`cardinality`: the running proxy checks against a variant written under the state dir
    (switched live through PUT /api/contract: no override, a restarted proxy reads its configured one)."""

    kind: ClassVar[str] = "contract-variant"
    contract: str  # the path the proxy reads (inside its container on Docker)
    file: str  # the variant in the state directory

    def summary(self) -> str:
        return "proxy settings changed"

    def forget(self, lab: LabState) -> None:
        Path(self.file).unlink(missing_ok=True)


# --- an active fault: the record plus what `break` decided and proved -----------------------------


@dataclass
class ActiveFault:
    """One entry of lab.json `faults`: the fault's options, its record, and what `break` proved."""

    record: FaultRecord
    options: dict[str, Any]
    since: float
    layer: int  # where `labctl check` should see the first failure
    hidden: bool = False  # a blind challenge: sealed in lab.json, named by nothing until `reveal`
    playbook: str | None = None
    alert: str | None = None
    evidence: list[str] = field(default_factory=list)
    seconds: float | None = None  # how long break took, verification included

    def summary(self) -> str:
        return self.record.summary()

    def forget(self, lab: LabState) -> None:
        self.record.forget(lab)

    def public(self) -> dict[str, Any]:
        """What `faults --json` and `break --json` show: everything but the record."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "record"}

    def to_json(self) -> dict[str, Any]:
        return {**self.public(), "record": self.record.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ActiveFault:
        known = {f.name for f in fields(cls)} - {"record"}
        return cls(
            record=FaultRecord.from_json(dict(data["record"])),
            **{k: v for k, v in data.items() if k in known},
        )
