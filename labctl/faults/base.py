"""What a fault is (a table entry: apply, verify, heal, with options) and the context it works in.

A fault's `apply` returns a typed record of everything it changed (labctl/faults/records.py); `heal`
undoes exactly that record, so lab.json alone is enough for another shell (or a later `labctl heal`)
to restore the lab.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labctl.errors import LabError
from labctl.faults.records import FaultRecord, OverrideUndo
from labctl.model import LabModel
from labctl.poll import poll
from labctl.runtimes.base import Runtime
from labctl.state import LabState


@dataclass(frozen=True)
class Option:
    name: str
    help: str
    choices: Sequence[str] = ()
    default: str | int | None = None
    kind: type = str
    positional: bool = False  # `labctl break latency 500` fills this option

    def parse(self, fault: str, raw: str) -> str | int:
        if self.kind is int:
            try:
                value = int(raw)
            except ValueError:
                raise LabError(
                    f"{fault}: --{self.name} must be a whole number, got {raw!r}",
                    f"e.g. `labctl break {fault} --{self.name} 500`",
                ) from None
            if value < 0:
                raise LabError(
                    f"{fault}: --{self.name} must not be negative, got {raw!r}",
                    f"e.g. `labctl break {fault} --{self.name} 500`",
                )
            return value
        if self.choices and raw not in self.choices:
            raise LabError(
                f"{fault}: --{self.name} {raw!r} is not one of {', '.join(self.choices)}",
                f"e.g. `labctl break {fault} --{self.name} {self.choices[0]}`",
            )
        return raw


@dataclass
class FaultContext:
    lab: LabState
    runtime: Runtime
    model: LabModel
    quiet: bool = False  # a hidden fault is being applied: services are asked not to log the change

    @property
    def running(self) -> list[str]:
        return self.model.stage_services(self.lab.stage, self.lab.runtime) if self.lab.stage else []

    def fault_dir(self, name: str) -> Path:
        path = self.lab.dir / "faults" / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def refresh(self) -> None:
        self.lab = self.lab.reload()
        self.runtime.lab = self.lab

    # --- overrides: add ours on top of whatever is there, and take exactly ours away again ----------

    def add_overrides(
        self,
        service: str,
        env: dict[str, str] | None = None,
        configs: list[Path] | None = None,
        may_fail_start: bool = False,
    ) -> OverrideUndo:
        """Apply extra env/config files to a service (restarts it); returns the undo record.

        With may_fail_start, a service that does not come back is part of the fault (e.g. an invalid
        URL): the error is kept in the record instead of raised.
        """
        self.refresh()
        if self.quiet:  # both runtimes: Docker mounts the copy under its own (neutral) name
            env = dict(env or {})  # the copies take the values they read out of it
            configs = [self._neutral_copy(service, Path(p), env) for p in configs or []]
        current = self.lab.overrides.get(service, {})
        cur_env = dict(current.get("env", {}))
        cur_cfg = list(current.get("extra_configs", []))
        before = {k: cur_env.get(k) for k in (env or {})}
        added = [str(Path(p).resolve()) for p in configs or [] if str(Path(p).resolve()) not in cur_cfg]
        cur_env.update(env or {})
        undo = OverrideUndo(service, before, added, was_running=self.runtime.is_running(service))
        try:
            self.runtime.set_overrides(service, extra_configs=[Path(p) for p in cur_cfg + added], env=cur_env)
        except LabError as exc:
            if not may_fail_start:
                self.refresh()
                self.remove_overrides(undo)  # leave the lab as it was
                raise
            undo.start_error = exc.message
        self.refresh()
        return undo

    def _neutral_copy(self, service: str, path: Path, env: dict[str, str]) -> Path:
        """A hidden fault's overlay under a name that says nothing (the service log, the process list and
        the container's command and mounts show its path: `--config .../faults/auth.yaml` would be the
        answer). A value the overlay reads from `env` (`${env:NAME}`) is written into the copy and taken
        out of `env`: the variable's name would show in the process environment and `docker inspect`."""
        import hashlib

        import yaml

        raw = path.read_text()
        for name in list(env):
            if f"${{env:{name}}}" in raw:
                raw = raw.replace(f"${{env:{name}}}", env.pop(name))
        # Data only: the overlay's comments explain the trap (and name it), the copy must not.
        text = yaml.safe_dump(yaml.safe_load(raw), sort_keys=False)
        folder = self.lab.dir / "config"
        folder.mkdir(parents=True, exist_ok=True)
        copy = folder / f"{service}-{hashlib.sha256(text.encode()).hexdigest()[:8]}.yaml"
        copy.write_text(text)
        return copy

    def remove_overrides(self, undo: OverrideUndo) -> None:
        service = undo.service
        self.refresh()
        configs, env = undo.without(self.lab.overrides.get(service, {}))
        self.runtime.set_overrides(service, extra_configs=[Path(c) for c in configs], env=env)
        self.refresh()
        # It ran before the fault; if it died meanwhile (e.g. a failed restart), start it again.
        if undo.was_running and not self.runtime.is_running(service):
            self.runtime.start_service(service)

    def effective_env(self, service: str) -> dict[str, str]:
        """The service's env as the runtime starts it: model env (+ when-running extras) + overrides."""
        from labctl.checks.context import service_env

        return service_env(self.lab, self.model, service)


@dataclass(frozen=True)
class Fault:
    name: str
    summary: str
    layer: int  # the layer where `labctl check` should see the first failure
    needs: tuple[str, ...]  # services the stage must run
    # Each fault's own record class (labctl/faults/records.py) goes in and out of these three.
    apply: Callable[[FaultContext, dict[str, Any]], FaultRecord]
    verify: Callable[[FaultContext, Any], list[str]]  # evidence lines; LabError when not in effect
    heal: Callable[[FaultContext, Any], None]
    options: tuple[Option, ...] = ()
    # The pipeline-health alert (lab/prometheus/rules) expected to fire for these options, if one covers it.
    alert: Callable[[dict[str, Any]], str | None] = field(default=lambda opts: None)
    playbook: str | None = None
    touches: Callable[[dict[str, Any]], set[str]] = field(default=lambda opts: set())  # conflict keys
    runtimes: tuple[str, ...] = ("native", "docker")  # where it can be applied (random draws respect it)
    # The layer for these options when it depends on them (a hop fault: the hop's layer in lab.yaml).
    layer_of: Callable[[LabModel, dict[str, Any]], int] | None = None

    def layer_for(self, model: LabModel, opts: dict[str, Any]) -> int:
        return self.layer_of(model, opts) if self.layer_of else self.layer

    def option(self, name: str) -> Option:
        for opt in self.options:
            if opt.name == name:
                return opt
        valid = ", ".join(f"--{o.name}" for o in self.options) or "none"
        raise LabError(f"fault {self.name!r} has no option --{name}", f"its options: {valid}")


def run_all(steps: list[Callable[[], None]]) -> None:
    """Run every undo step even if one fails (a half-healed lab is worse), then raise the first error."""
    errors: list[LabError] = []
    for step in steps:
        try:
            step()
        except LabError as exc:
            errors.append(exc)
    if errors:
        raise LabError("; ".join(e.message for e in errors), errors[0].hint or "run `labctl heal` again")


def wait_until(what: str, check: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll `check` until true or `timeout`; False on timeout (callers turn that into a LabError). A probe
    that raises a connection or lab error is "not yet"."""
    # requests.RequestException is an OSError: naming it here would import requests for every wait.
    return bool(poll(check, timeout, interval, not_yet=(OSError, ValueError, KeyError, LabError)))
