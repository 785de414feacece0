"""The contract compiled for the hot path: per-metric rule tables and the checks that read them.

A contract is compiled once into `CompiledAttrs` (the attribute checks of one metric, event, span or
resource, merged with the common attributes) and `CompiledMetric` (a metric's rule); each data point
then costs one attribute dict plus a few set look-ups. The functions below are the metric checks the
evaluator calls: metric level (instrument, temporality, unit), number values, histogram buckets,
cardinality and the seed contracts' required fields.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from labctl.contract.model import Attribute, ContractSpec, MetricRule
from labctl.contract.results import Violation
from labctl.contract.results import violation as _v

TEMPORALITY = {0: "unspecified", 1: "delta", 2: "cumulative"}
TEMPORALITY_CODE = {"delta": 1, "cumulative": 2}


def _is_number(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, (int, float)):
        return True
    if isinstance(v, str):  # Claude Code sends some numeric event attributes as strings
        try:
            float(v)
        except ValueError:
            return False
        return True
    return False


_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "double": lambda v: isinstance(v, float) or (isinstance(v, int) and not isinstance(v, bool)),
    "number": _is_number,
    "boolean": lambda v: isinstance(v, bool),
    "string[]": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
}


class CompiledAttrs:
    """Attribute checks of one metric / event / resource, merged with the contract's common attributes."""

    __slots__ = ("checks", "known", "patterns", "required", "sensitive")

    def __init__(
        self,
        attrs: dict[str, Attribute],
        common: dict[str, Attribute],
        strict_unknown: bool,
        extra_known: tuple[str, ...] = (),
    ) -> None:
        merged = dict(common)
        merged.update(attrs)
        self.required = tuple(k for k, a in merged.items() if a.requirement == "required")
        self.checks: dict[
            str, tuple[frozenset[Any] | None, Callable[[Any], bool] | None, str, float | None, float | None]
        ] = {}
        # a value outside `values` may still match the attribute's pattern (e.g. query_source agent:...)
        self.patterns = {k: re.compile(a.pattern) for k, a in merged.items() if a.pattern is not None}
        for k, a in merged.items():
            values = frozenset(a.values or ()) if a.values is not None or a.pattern is not None else None
            check = _TYPE_CHECKS.get(a.type)
            if values is not None or check is not None or a.min is not None or a.max is not None:
                self.checks[k] = (values, check, a.type, a.min, a.max)
        self.known: frozenset[str] | None = (
            frozenset(merged) | frozenset(extra_known) if strict_unknown else None
        )
        self.sensitive = frozenset(k for k, a in merged.items() if a.sensitive)

    def _shown(self, key: str, value: Any) -> str:
        if key in self.sensitive:
            return "(redacted)"  # never echo prompt text
        shown = repr(value)
        return shown if len(shown) <= 120 else shown[:100] + f"... ({len(shown)} chars)"

    def check(self, attrs: dict[str, Any], base: str, out: list[Violation]) -> None:
        for k in self.required:
            if k not in attrs:
                out.append(
                    _v(
                        f"{base}.attributes[{k}]",
                        "required_attribute",
                        f"required attribute '{k}' is missing",
                    )
                )
        checks = self.checks
        known = self.known
        for k, v in attrs.items():
            c = checks.get(k)
            if c is None:
                if known is not None and k not in known:
                    out.append(
                        _v(
                            f"{base}.attributes[{k}]",
                            "unknown_attribute",
                            f"attribute '{k}' is not in the contract",
                        )
                    )
                continue
            values, typecheck, tname, lo, hi = c
            if typecheck is not None and not typecheck(v):
                out.append(
                    _v(
                        f"{base}.attributes[{k}]",
                        "attribute_type",
                        f"attribute '{k}' is {self._shown(k, v)}, expected a {tname}",
                    )
                )
                continue
            if values is not None:
                try:
                    ok = v in values
                except TypeError:  # an array/kvlist value is never a member of an enum
                    ok = False
                if not ok and k in self.patterns and isinstance(v, str):
                    ok = self.patterns[k].fullmatch(v) is not None
                if not ok:
                    allowed = ", ".join(sorted(str(x) for x in values))
                    if k in self.patterns:
                        allowed = (
                            allowed + " or " if allowed else ""
                        ) + f"a match of {self.patterns[k].pattern}"
                    out.append(
                        _v(
                            f"{base}.attributes[{k}]",
                            "attribute_value",
                            f"attribute '{k}' is {self._shown(k, v)}, allowed: {allowed}",
                        )
                    )
                    continue
            if lo is not None or hi is not None:
                try:
                    num = float(v)
                except (TypeError, ValueError):
                    out.append(
                        _v(
                            f"{base}.attributes[{k}]",
                            "attribute_type",
                            f"attribute '{k}' is {self._shown(k, v)}, expected a number",
                        )
                    )
                    continue
                if not math.isfinite(num) or (lo is not None and num < lo) or (hi is not None and num > hi):
                    out.append(
                        _v(
                            f"{base}.attributes[{k}]",
                            "attribute_range",
                            f"attribute '{k}' is {self._shown(k, v)}, outside [{lo}, {hi}]",
                        )
                    )


class CompiledMetric:
    __slots__ = (
        "attrs",
        "cardinality",
        "kind",
        "max",
        "min",
        "monotonic",
        "prom_labels",
        "required_fields",
        "rule",
        "temporality",
        "unit",
        "value_type",
    )

    def __init__(self, rule: MetricRule, spec: ContractSpec) -> None:
        self.rule = rule
        self.kind = rule.kind
        self.monotonic = rule.monotonic
        self.temporality = TEMPORALITY_CODE.get(rule.temporality, 0)
        self.unit = rule.unit
        self.prom_labels = rule.label_style == "prometheus"
        common = {} if self.prom_labels else spec.common_attributes
        self.attrs = CompiledAttrs(rule.attributes, common, spec.unknown_attributes == "violation")
        self.min = rule.min
        self.max = rule.max
        self.value_type = rule.value_type
        # attribute -> (limit, distinct values seen); bounded by the limit, so memory stays bounded
        self.cardinality: list[tuple[str, int, set[Any]]] = [
            (k, n, set()) for k, n in rule.cardinality.items()
        ]
        self.required_fields = rule.required_fields


def metric_level(
    cm: CompiledMetric,
    m: Any,
    kind: str | None,
    monotonic: bool,
    temporality: int,
    mbase: str,
    out: list[Violation],
) -> None:
    if kind != cm.kind:
        out.append(
            _v(
                mbase,
                "instrument",
                f"'{m.name}' should be a {cm.rule.instrument} (OTLP {cm.kind}), got {kind or 'no data'}",
            )
        )
    elif cm.monotonic is not None and monotonic != cm.monotonic:
        out.append(
            _v(
                mbase + ".sum.isMonotonic",
                "monotonic",
                f"'{m.name}' should be {'monotonic' if cm.monotonic else 'non-monotonic'}",
            )
        )
    if cm.temporality and kind == cm.kind and temporality != cm.temporality:
        out.append(
            _v(
                mbase + f".{kind}.aggregationTemporality",
                "temporality",
                f"'{m.name}' should be {TEMPORALITY[cm.temporality]}, got "
                f"{TEMPORALITY.get(temporality, temporality)}",
            )
        )
    elif kind in ("sum", "histogram") and temporality == 0:
        out.append(
            _v(
                mbase + f".{kind}.aggregationTemporality",
                "temporality",
                f"'{m.name}' has no aggregation temporality (UNSPECIFIED is invalid)",
            )
        )
    if cm.unit is not None and m.unit != cm.unit:
        out.append(_v(mbase + ".unit", "unit", f"'{m.name}' unit should be {cm.unit!r}, got {m.unit!r}"))


def number_checks(
    cm: CompiledMetric | None,
    value: Any,
    vk: str | None,
    monotonic: bool,
    prefix: str,
    pi: int,
    out: list[Violation],
) -> None:
    if value is None:
        out.append(_v(f"{prefix}{pi}]", "value_missing", "data point has no value (asInt/asDouble)"))
        return
    if vk == "as_double" and not math.isfinite(value):
        out.append(_v(f"{prefix}{pi}].asDouble", "value_not_finite", f"value is {value} (NaN/Inf)"))
        return
    if monotonic and value < 0:
        out.append(
            _v(
                f"{prefix}{pi}].{'asDouble' if vk == 'as_double' else 'asInt'}",
                "negative_counter",
                f"a monotonic counter cannot be negative, got {value}",
            )
        )
    if cm is None:
        return
    if (cm.min is not None and value < cm.min) or (cm.max is not None and value > cm.max):
        out.append(_v(f"{prefix}{pi}]", "value_range", f"value {value} outside [{cm.min}, {cm.max}]"))
    if cm.value_type == "int" and vk != "as_int":
        out.append(_v(f"{prefix}{pi}]", "value_type", "value should be an integer (asInt)"))
    elif cm.value_type == "double" and vk != "as_double":
        out.append(_v(f"{prefix}{pi}]", "value_type", "value should be a double (asDouble)"))


def histogram_checks(p: Any, prefix: str, pi: int, out: list[Violation]) -> None:
    if p.HasField("sum") and not math.isfinite(p.sum):
        out.append(_v(f"{prefix}{pi}].sum", "value_not_finite", f"histogram sum is {p.sum}"))
    counts = p.bucket_counts
    if counts:
        if len(p.explicit_bounds) != len(counts) - 1:
            out.append(
                _v(
                    f"{prefix}{pi}].explicitBounds",
                    "histogram_buckets",
                    f"{len(counts)} bucket counts need {len(counts) - 1} bounds, "
                    f"got {len(p.explicit_bounds)}",
                )
            )
        if sum(counts) != p.count:
            out.append(
                _v(
                    f"{prefix}{pi}].count",
                    "histogram_buckets",
                    f"count {p.count} != sum of bucket counts {sum(counts)}",
                )
            )
    bounds = list(p.explicit_bounds)
    if any(not math.isfinite(b) for b in bounds) or bounds != sorted(bounds):
        out.append(
            _v(
                f"{prefix}{pi}].explicitBounds",
                "histogram_buckets",
                "bounds must be finite and increasing",
            )
        )


def cardinality(cm: CompiledMetric, attrs: dict[str, Any], base: str, out: list[Violation]) -> None:
    new: list[tuple[set[Any], Any]] = []
    over = False
    for key, limit, seen in cm.cardinality:
        if key == "*":
            try:
                val: Any = tuple(sorted(attrs.items()))
                hash(val)
            except TypeError:
                val = repr(sorted(attrs.items(), key=lambda kv: kv[0]))
        else:
            if key not in attrs:
                continue
            val = attrs[key]
            if isinstance(val, (list, dict)):
                val = repr(val)
        if val in seen:
            continue
        if len(seen) >= limit:
            over = True
            what = "attribute sets (series)" if key == "*" else f"values of '{key}'"
            out.append(
                _v(
                    f"{base}.attributes" + ("" if key == "*" else f"[{key}]"),
                    "cardinality",
                    f"more than {limit} distinct {what} for '{cm.rule.name}'",
                )
            )
        else:
            new.append((seen, val))
    if not over:  # a refused point takes no room in any limit
        for seen, val in new:
            seen.add(val)


def seed_fields(
    cm: CompiledMetric, value: Any, attrs: dict[str, Any], t: int, base: str, out: list[Violation]
) -> None:
    for f in cm.required_fields:
        if f == "value" and value is None and not any(v["rule"] == "value_missing" for v in out):
            out.append(_v(base, "required_field", "required field 'value' is missing"))
        elif f == "labels" and not attrs:
            out.append(_v(base + ".attributes", "required_field", "required field 'labels' is empty"))
        elif f == "timestamp" and not t:
            out.append(_v(base + ".timeUnixNano", "required_field", "required field 'timestamp' is 0"))
