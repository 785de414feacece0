"""Matrix cases as data (lab/matrix/cases.yaml): loaded, validated and filtered here."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from labctl.errors import LabError

CASES_FILE = Path(__file__).resolve().parents[2] / "lab" / "matrix" / "cases.yaml"
RECEIVERS = (
    "collector",
    "proxy",
    "prometheus-scrape",
    "prometheus-otlp",
    "blackhole",
    "unreachable",
    "scrape",
    "none",
)
OUTCOMES = ("delivered", "failed", "pending", "config_error", "nothing", "sent_not_stored", "any")
PLACES = ("collector", "collector_b", "proxy", "stdout", "scrape", "prometheus")
DIMENSIONS = ("exporter", "protocol", "endpoint", "interval", "timeout", "headers")
EXPECT_KEYS = {
    "outcome",
    "seen_in",
    "not_seen_in",
    "error",
    "notice",
    "retries",
    "gives_up_s",
    "first_export_s",
    "min_exports",
    "hops_agree",
}


@dataclass
class Case:
    id: str
    title: str
    dims: dict[str, str]
    receiver: dict[str, Any]
    env: dict[str, str | None]
    emit: dict[str, float]
    expect: dict[str, Any]
    focus: str
    tags: list[str] = field(default_factory=list)

    @property
    def exclusive(self) -> bool:
        return "exclusive" in self.tags

    def matches(self, term: str) -> bool:
        """A filter term matches the id (prefix or substring), a tag, a receiver kind or a dimension value."""
        t = term.lower()
        if t in self.id.lower() or t in (x.lower() for x in self.tags) or t == self.receiver["kind"]:
            return True
        if "=" in t:
            key, _, value = t.partition("=")
            return str(self.dims.get(key, "")).lower() == value
        return any(t == str(v).lower() for v in self.dims.values())


def _err(path: Path, case_id: str, msg: str) -> LabError:
    return LabError(f"{path}: case {case_id!r}: {msg}", "fix the case (the file's header lists the fields)")


def load_cases(path: Path = CASES_FILE) -> list[Case]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise LabError(f"cannot read the matrix cases {path}: {exc}", "check the YAML syntax") from None
    defaults = data.get("defaults", {}) if isinstance(data, dict) else {}
    raw_cases = data.get("cases") if isinstance(data, dict) else None
    if not isinstance(raw_cases, list) or not raw_cases:
        raise LabError(f"{path} has no `cases:` list", "see the header of lab/matrix/cases.yaml")
    cases: list[Case] = []
    seen: set[str] = set()
    for raw in raw_cases:
        cid = str(raw.get("id", ""))
        if not cid or cid in seen:
            raise _err(path, cid, "missing or duplicate id")
        seen.add(cid)
        for key in ("title", "receiver", "expect", "focus", "env"):
            if key not in raw:
                raise _err(path, cid, f"missing `{key}`")
        receiver = dict(raw["receiver"])
        if receiver.get("kind") not in RECEIVERS:
            raise _err(path, cid, f"receiver kind must be one of {', '.join(RECEIVERS)}")
        expect = dict(raw["expect"])
        unknown = set(expect) - EXPECT_KEYS
        if unknown:
            raise _err(path, cid, f"unknown expect keys {sorted(unknown)}")
        if expect.get("outcome") not in OUTCOMES:
            raise _err(path, cid, f"expect.outcome must be one of {', '.join(OUTCOMES)}")
        for key in ("seen_in", "not_seen_in"):
            bad = [p for p in expect.get(key, []) if p not in PLACES]
            if bad:
                raise _err(path, cid, f"expect.{key} has unknown places {bad} (use {', '.join(PLACES)})")
        env: dict[str, str | None] = {**defaults.get("env", {}), **raw["env"]}
        env = {k: (None if v is None else str(v)) for k, v in env.items()}
        dims = {k: str(v) for k, v in (raw.get("dims") or {}).items()}
        dims.setdefault("exporter", env.get("OTEL_METRICS_EXPORTER") or "unset")
        dims.setdefault(
            "protocol",
            env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL") or "n/a",
        )
        dims.setdefault("interval", env.get("OTEL_METRIC_EXPORT_INTERVAL") or "60000")
        dims.setdefault("timeout", env.get("OTEL_EXPORTER_OTLP_TIMEOUT") or "10000")
        for d in DIMENSIONS:
            if d not in dims:
                raise _err(path, cid, f"dims.{d} is missing")
        cases.append(
            Case(
                id=cid,
                title=str(raw["title"]),
                dims=dims,
                receiver=receiver,
                env=env,
                emit={**defaults.get("emit", {}), **(raw.get("emit") or {})},
                expect=expect,
                focus=str(raw["focus"]),
                tags=[str(t) for t in raw.get("tags", [])],
            )
        )
    return cases


def select(cases: list[Case], filters: list[str]) -> list[Case]:
    """Cases matching every comma-separated group: `--filter ci --filter grpc` = ci AND grpc;
    `--filter grpc,http/json` = grpc OR http/json."""
    out = cases
    for f in filters:
        terms = [t.strip() for t in f.split(",") if t.strip()]
        out = [c for c in out if any(c.matches(t) for t in terms)]
    if not out:
        raise LabError(
            f"no matrix case matches {' AND '.join(filters)}",
            "run `labctl matrix list` to see ids, tags and dimension values",
        )
    return out
