"""The inspection side's configuration, parsed and validated in one place, without side effects.

`Inspector` builds its parts from these settings, and `labctl proxy serve --check` parses them too, so a
configuration that passes the check cannot fail later at start on an inspection section.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labctl.errors import LabError
from labctl.proxy.inspect.alerts import AlertRule, parse_rules
from labctl.redact import Redactor
from labctl.units import parse_size

_INSPECT_KEYS = ("payloads", "records_per_payload", "violations", "console", "resource_labels", "max_series")
_CONSOLES = ("summary", "points", "off")
_WRITERS = ("process", "inline")


def _section(config: dict[str, Any], key: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    sec = config.get(key) or {}
    if not isinstance(sec, dict):
        raise LabError(f"proxy config: '{key}' must be a mapping", f"write {key}: as `key: value` lines")
    unknown = set(sec) - set(allowed)
    if unknown:
        raise LabError(
            f"proxy config: {key}: unknown key(s) {', '.join(sorted(map(str, unknown)))}",
            f"{key} takes: {', '.join(allowed)}",
        )
    return sec


def _positive_int(sec: dict[str, Any], key: str, default: int, where: str) -> int:
    v = sec.get(key, default)
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise LabError(
            f"proxy config: {where}.{key} must be a positive integer, got {v!r}", f"e.g. {key}: {default}"
        )
    return v


@dataclass(frozen=True, slots=True)
class InspectSettings:
    payloads: int
    records_per_payload: int
    violations: int
    console: str  # summary | points | off
    resource_labels: tuple[str, ...]
    max_series: int
    max_sessions: int
    redactor: Redactor
    alert_rules: tuple[AlertRule, ...]
    log_mode: str | None  # process | inline; None: no JSON Lines log
    log_path: Path
    log_max_bytes: int
    mode: str  # the contract mode, as the inspector shows it

    @classmethod
    def from_config(cls, config: dict[str, Any] | None, data_dir: Path) -> InspectSettings:
        """`config`: the proxy's expanded YAML; LabError naming the section and the fix on bad values."""
        config = config or {}
        ins = _section(config, "inspect", _INSPECT_KEYS)
        console = str(ins.get("console", "summary"))
        if console not in _CONSOLES:
            raise LabError(f"proxy config: inspect.console is {console!r}", "use summary, points or off")
        resource_labels = ins.get("resource_labels", ["service.name", "lab.marker"])
        if not isinstance(resource_labels, list):
            raise LabError(
                "proxy config: inspect.resource_labels must be a list", "e.g. [service.name, lab.marker]"
            )
        sess = _section(config, "sessions", ("max",))
        logc = _section(config, "log", ("enabled", "path", "max_bytes", "writer"))
        path = Path(str(logc.get("path", "inspect/records.jsonl")))
        if not path.is_absolute():
            path = Path(data_dir) / path
        max_bytes = parse_size(logc.get("max_bytes", "64MiB"), "log.max_bytes")
        writer = str(logc.get("writer", "process"))
        if writer not in _WRITERS:
            raise LabError(
                f"proxy config: log.writer is {writer!r}",
                "use process (a child process writes the log) or inline",
            )
        contract = config.get("contract")
        mode = str(contract.get("mode", "observe")) if isinstance(contract, dict) else "observe"
        return cls(
            payloads=_positive_int(ins, "payloads", 200, "inspect"),
            records_per_payload=_positive_int(ins, "records_per_payload", 200, "inspect"),
            violations=_positive_int(ins, "violations", 1000, "inspect"),
            console=console,
            resource_labels=tuple(map(str, resource_labels)),
            max_series=_positive_int(ins, "max_series", 20_000, "inspect"),
            max_sessions=_positive_int(sess, "max", 1000, "sessions"),
            redactor=Redactor.from_config(config.get("redact")),
            alert_rules=tuple(parse_rules(config.get("alerts"))),
            log_mode=writer if logc.get("enabled", True) else None,
            log_path=path,
            log_max_bytes=max_bytes,
            mode=mode,
        )
