"""Prometheus text exposition for /metrics: the proxied metrics (HELP/TYPE from the contract, names as
the Collector's prometheus exporter writes them, delta turned into running totals) and the proxy's own
counters (from the transport's stats_provider), alerts and inspection counters."""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

from labctl.contract import Contract, Evaluation, SeriesId
from labctl.contract.promname import label_name, prometheus_name
from labctl.otlp.values import attrs_key
from labctl.proxy.inspect.accumulate import CounterAccumulator

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def escape(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt(v: float) -> str:
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer() and abs(v) < 1e15):
        return str(int(v))
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("+Inf" if v > 0 else "-Inf")
    return repr(float(v))


def _labels(pairs: dict[str, Any]) -> str:
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{escape(v)}"' for k, v in pairs.items()) + "}"


class _Family:
    __slots__ = ("binds", "help", "name", "series", "type")

    def __init__(self, name: str, help_text: str, type_: str) -> None:
        self.name = name
        self.help = help_text
        self.type = type_
        self.series: dict[Any, list[Any]] = {}  # key -> [labels, value, key]
        # series id -> (resource labels, cell): a series seen before, found without building its labels
        self.binds: dict[SeriesId, tuple[tuple[tuple[str, str], ...], list[Any]]] = {}


class ProxiedMetrics:
    """Running values of every proxied counter/gauge series, bounded by `max_series`."""

    def __init__(
        self,
        resource_labels: tuple[str, ...] = ("service.name", "lab.marker"),
        max_series: int = 20_000,
        hidden: frozenset[str] = frozenset(),
    ) -> None:
        self.resource_labels = resource_labels
        self.max_series = max_series
        self.hidden = hidden
        self.families: OrderedDict[str, _Family] = OrderedDict()
        self.counters = CounterAccumulator(max_series * 2)
        self.n_series = 0
        self.dropped_series = 0
        self._family_cache: dict[tuple[Any, ...], tuple[Contract, _Family]] = {}
        self._n_binds = 0  # entries in all families' `binds`

    def observe(self, ev: Evaluation) -> None:
        if ev.signal != "metrics":
            return
        contract: Contract = ev.contract
        isfinite = math.isfinite
        last_meta: Any = None
        skip = True
        # What a Metric's points share, worked out once per distinct (resource, name, unit, kind,
        # monotonic, temporality) of the request: many one-point metrics of a few names cost a few.
        shared: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        resource_labels: dict[int, tuple[dict[str, str], tuple[tuple[str, str], ...]]] = {}
        for item in ev.items:
            meta = item.meta
            if meta is not last_meta:
                last_meta = meta
                kind = meta.kind
                skip = kind != "sum" and kind != "gauge"
                if skip:
                    continue
                ri, name, unit, monotonic, temporality = (
                    meta.resource_index,
                    meta.name or "",
                    meta.unit,
                    meta.monotonic,
                    meta.temporality,
                )
                key = (
                    ri,
                    name,
                    kind,
                    unit,
                    temporality,
                    monotonic,
                )  # the resource by its index in the request
                hit = shared.get(key)
                if hit is None:
                    resource = meta.resource
                    res_labels = resource_labels.get(ri)
                    if res_labels is None:
                        rl0 = {label_name(k): str(resource[k]) for k in self.resource_labels if k in resource}
                        res_labels = resource_labels[ri] = (rl0, tuple(rl0.items()))
                    # counter: add increases; delta sum: add; anything else: the last value
                    hit = shared[key] = (
                        self._family(contract, name, unit, kind or "", monotonic),
                        *res_labels,
                        "counter"
                        if kind == "sum" and monotonic
                        else "add"
                        if kind == "sum" and temporality == "delta"
                        else "set",
                        temporality == "cumulative",
                    )
                fam, rl, rkey, mode, cumulative = hit
            elif skip:
                continue
            value = item.value
            if value is None or (value.__class__ is float and not isfinite(value)):
                continue
            # A series seen before is found by its id: no labels built and hashed per point. Its cell
            # is keyed on the labels' content, so two encodings of one series share it.
            series = item.series
            bound = fam.binds.get(series) if series is not None else None
            if bound is not None and bound[0] == rkey:
                cell = bound[1]
            else:
                attrs = item.attributes
                skey = (rkey, attrs_key(attrs))
                cell = fam.series.get(skey)
                if cell is None:
                    if self.n_series >= self.max_series:
                        self.dropped_series += 1
                        continue
                    labels = {
                        label_name(k): ("[REDACTED]" if k in self.hidden else _label_value(v))
                        for k, v in attrs.items()
                    }
                    labels.update(rl)
                    cell = fam.series[skey] = [labels, 0.0, skey]
                    self.n_series += 1
                if series is not None:
                    if self._n_binds >= 2 * self.max_series:
                        for f in self.families.values():
                            f.binds.clear()
                        self._n_binds = 0
                    fam.binds[series] = (rkey, cell)
                    self._n_binds += 1
            if mode == "counter":
                if cumulative:
                    cell[1] += self.counters.increase(
                        (fam.name, cell[2]), "cumulative", item.start_ns, float(value)
                    )
                elif value > 0:
                    cell[1] += value
            elif mode == "add":
                cell[1] += float(value)
            else:
                cell[1] = float(value)

    def _family(self, contract: Contract, name: str, unit: str, kind: str, monotonic: bool) -> _Family:
        key = (name, unit, kind, monotonic)
        hit = self._family_cache.get(key)
        if hit is not None and hit[0] is contract:
            return hit[1]
        fam = self._new_family(contract, name, unit, kind, monotonic)
        if len(self._family_cache) > 10_000:
            self._family_cache.clear()
        self._family_cache[key] = (contract, fam)
        return fam

    def _new_family(self, contract: Contract, name: str, unit: str, kind: str, monotonic: bool) -> _Family:
        counter = kind == "sum" and monotonic
        rule = contract.metric_rule(name, unit, kind, monotonic) if contract is not None else None
        ns = contract.spec.prometheus_namespace if contract is not None else ""
        prom = (
            rule.prometheus_name
            if rule is not None and rule.prometheus_name
            else prometheus_name(name, unit, monotonic_sum=counter, namespace=ns)
        )
        fam = self.families.get(prom)
        if fam is None:
            help_text = rule.help_text() if rule is not None else f"{name} (not in the contract)"
            type_ = "counter" if counter else "gauge"
            if rule is not None and rule.prom_type() in ("counter", "gauge") and rule.kind == kind:
                type_ = rule.prom_type()
            fam = self.families[prom] = _Family(prom, help_text, type_)
        return fam

    def render(self, out: list[str]) -> None:
        for fam in self.families.values():
            out.append(f"# HELP {fam.name} {escape(fam.help)}")
            out.append(f"# TYPE {fam.name} {fam.type}")
            for labels, value, _key in fam.series.values():
                out.append(f"{fam.name}{_labels(labels)} {_fmt(value)}")


def _label_value(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def render_proxy_stats(stats: dict[str, Any], out: list[str]) -> None:
    """The transport's counters (`counters`: name -> {signal: n} or {signal: {reason: n}}) and gauges."""
    try:
        from labctl.proxy.stats import COUNTER_HELP, GAUGE_HELP
    except ImportError:  # pragma: no cover - the transport ships both modules together
        COUNTER_HELP, GAUGE_HELP = {}, {}
    for name, by_signal in (stats.get("counters") or {}).items():
        if not isinstance(by_signal, dict):
            continue
        metric = f"labctl_proxy_{label_name(name)}_total"
        out.append(f"# HELP {metric} {escape(COUNTER_HELP.get(name, name))}")
        out.append(f"# TYPE {metric} counter")
        for signal, v in by_signal.items():
            if isinstance(v, dict):
                for reason, n in v.items():
                    out.append(f'{metric}{{signal="{escape(signal)}",reason="{escape(reason)}"}} {_fmt(n)}')
            elif isinstance(v, (int, float)):
                out.append(f'{metric}{{signal="{escape(signal)}"}} {_fmt(v)}')
    for name, v in (stats.get("gauges") or {}).items():
        metric = f"labctl_proxy_{label_name(name)}"
        help_text = escape(GAUGE_HELP.get(name, name.replace("_", " ")))
        if isinstance(v, dict):
            out.append(f"# HELP {metric} {help_text}")
            out.append(f"# TYPE {metric} gauge")
            for signal, n in v.items():
                if isinstance(n, (int, float)):
                    out.append(f'{metric}{{signal="{escape(signal)}"}} {_fmt(n)}')
        elif isinstance(v, bool):
            out.append(f"# HELP {metric} {help_text} (1 = yes)")
            out.append(f"# TYPE {metric} gauge")
            out.append(f"{metric} {1 if v else 0}")
        elif isinstance(v, (int, float)):
            out.append(f"# HELP {metric} {help_text}")
            out.append(f"# TYPE {metric} gauge")
            out.append(f"{metric} {_fmt(v)}")
        elif isinstance(v, str):
            out.append(f"# HELP {metric} {help_text} (the current value is the label)")
            out.append(f"# TYPE {metric} gauge")
            out.append(f'{metric}{{value="{escape(v)}"}} 1')
    upstream = stats.get("upstream")
    if isinstance(upstream, dict) and upstream.get("state"):
        out.append("# HELP labctl_proxy_upstream_state The forwarder's state (the current one is 1).")
        out.append("# TYPE labctl_proxy_upstream_state gauge")
        out.append(f'labctl_proxy_upstream_state{{state="{escape(upstream["state"])}"}} 1')
    if "uptime_s" in stats and isinstance(stats["uptime_s"], (int, float)):
        out.append("# HELP labctl_proxy_uptime_seconds Seconds since the proxy started.")
        out.append("# TYPE labctl_proxy_uptime_seconds gauge")
        out.append(f"labctl_proxy_uptime_seconds {_fmt(stats['uptime_s'])}")
