"""Spans against the contract: name, kind, attributes and the parent each span must sit under.

A span's parent is often not in the same request: Claude Code ends (and so exports) a child before its
parent, and the batch processor may send them seconds apart. So the checker remembers the names of
recent spans by id. A child whose parent is already known is checked at once (and dropped in enforce
mode like any violating span); a child whose parent comes later is checked when the parent arrives,
and a wrong parent is then reported on the parent's span as a `span_parent_late` violation that never
drops anything (the child has been forwarded already).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from labctl.contract.model import ContractSpec, SpanRule
from labctl.contract.results import Item, ItemMeta, Violation
from labctl.contract.results import violation as _v
from labctl.otlp.values import SPAN_KIND_NAMES as KIND_NAMES
from labctl.otlp.values import any_value

KIND_CODES = {name: code for code, name in KIND_NAMES.items()}
_REMEMBERED_SPANS = 20_000  # span id -> name of recent spans, to resolve parents sent in a later request
_PENDING_CHILDREN = 20_000  # children waiting for a parent not seen yet


# OTLP's id sizes. A span id of another length decodes in the proxy, but the Collector refuses the whole
# request carrying it (so the trace store never sees any span of that request).
_ID_SIZES = (("trace_id", 16, False), ("span_id", 8, False), ("parent_span_id", 8, True))


def _span_ids(sp: Any, base: str, out: list[Violation]) -> None:
    """Every span, whatever the contract says of it: ids of OTLP's sizes (a parent id may be absent)."""
    for field, size, optional in _ID_SIZES:
        n = len(getattr(sp, field))
        if n != size and not (optional and n == 0):
            allowed = f"{size}, or none" if optional else f"{size}"
            out.append(
                _v(
                    f"{base}.{field}",
                    "malformed_id",
                    f"{field} is {n} bytes ({allowed}): the Collector refuses the whole request carrying it",
                )
            )


class AttrChecker(Protocol):
    def check(self, attrs: dict[str, Any], base: str, out: list[Violation]) -> None: ...


class _CompiledSpan:
    __slots__ = ("attrs", "kind", "parents", "root", "rule")

    def __init__(self, rule: SpanRule, attrs: AttrChecker) -> None:
        self.rule = rule
        self.attrs = attrs
        self.kind = KIND_CODES.get(rule.kind)  # None = any kind
        self.parents = frozenset(rule.parents) if rule.parents is not None else None
        # parents None and root: must be a root span; both unset: where it sits is not checked
        self.root = rule.root

    def parent_ok(self, parent_name: str) -> bool:
        return self.parents is None or parent_name in self.parents

    def allowed_parents(self) -> str:
        names = sorted(self.parents or ())
        return ", ".join(names + (["(root)"] if self.root else [])) or "(root)"


class SpanChecker:
    """Checks the spans of trace requests; keeps the bounded memory that resolves parents across requests."""

    def __init__(self, spec: ContractSpec, compile_attrs: Callable[[SpanRule], AttrChecker]) -> None:
        self.unknown_violation = spec.unknown_spans == "violation"
        self.rules = {name: _CompiledSpan(rule, compile_attrs(rule)) for name, rule in spec.spans.items()}
        self._seen: OrderedDict[bytes, str] = OrderedDict()
        # parent span id -> [(child name, child span id hex)] of checked children whose parent was unknown
        self._pending: OrderedDict[bytes, list[tuple[str, str]]] = OrderedDict()

    def _remember(self, span_id: bytes, name: str) -> None:
        seen = self._seen
        seen[span_id] = name
        if len(seen) > _REMEMBERED_SPANS:
            seen.popitem(last=False)

    def evaluate(
        self,
        request: Any,
        resource_violations: Callable[[dict[str, Any], str], list[Violation]],
    ) -> Iterator[tuple[Item, bool]]:
        """(item, droppable) for every span of `request` in order; item as in `Evaluation.items`.
        `droppable`: the span violates the contract itself (not only through a late parent finding)."""
        # Spans of this request first: a parent later in the same request is not "late".
        for rs in request.resource_spans:
            for ss in rs.scope_spans:
                for sp in ss.spans:
                    if sp.span_id:
                        self._remember(bytes(sp.span_id), sp.name)
        for ri, rs in enumerate(request.resource_spans):
            resource = {kv.key: any_value(kv.value) for kv in rs.resource.attributes}
            res_viol = resource_violations(resource, f"resourceSpans[{ri}]")
            for si, ss in enumerate(rs.scope_spans):
                scope = {"name": ss.scope.name, "version": ss.scope.version}
                meta = ItemMeta(resource, scope, None, "span", "", "", False, ri, si)
                for i, sp in enumerate(ss.spans):
                    attrs = {kv.key: any_value(kv.value) for kv in sp.attributes}
                    base = f"resourceSpans[{ri}].scopeSpans[{si}].spans[{i}]({sp.name})"
                    viol: list[Violation] = list(res_viol)
                    _span_ids(sp, base, viol)
                    self._check(sp, attrs, base, viol)
                    droppable = bool(viol)
                    viol += self._late(sp, base)
                    yield Item(meta, i, sp, attrs, sp.name, viol, None, 0, 0), droppable

    def _check(self, sp: Any, attrs: dict[str, Any], base: str, out: list[Violation]) -> None:
        rule = self.rules.get(sp.name)
        if rule is None:
            if self.unknown_violation:
                out.append(_v(base + ".name", "unknown_span", f"span '{sp.name}' is not in the contract"))
            return
        if rule.kind is not None and sp.kind != rule.kind:
            out.append(
                _v(
                    base + ".kind",
                    "span_kind",
                    f"span '{sp.name}' should be of kind {rule.rule.kind}, "
                    f"got {KIND_NAMES.get(sp.kind, sp.kind)}",
                )
            )
        rule.attrs.check(attrs, base, out)
        parent_id = bytes(sp.parent_span_id)
        if not parent_id:
            if rule.parents is not None and not rule.root:
                out.append(
                    _v(
                        base + ".parentSpanId",
                        "span_parent",
                        f"span '{sp.name}' has no parent; it belongs under: {rule.allowed_parents()}",
                    )
                )
            return
        if rule.parents is None:
            if rule.root:
                out.append(
                    _v(
                        base + ".parentSpanId",
                        "span_parent",
                        f"span '{sp.name}' has a parent; it should be a root span",
                    )
                )
            return
        parent = self._seen.get(parent_id)
        if parent is None:
            pending = self._pending.setdefault(parent_id, [])
            pending.append((sp.name, bytes(sp.span_id).hex()))
            if len(self._pending) > _PENDING_CHILDREN:
                self._pending.popitem(last=False)
            return
        if not rule.parent_ok(parent):
            out.append(
                _v(
                    base + ".parentSpanId",
                    "span_parent",
                    f"span '{sp.name}' is under '{parent}'; it belongs under: {rule.allowed_parents()}",
                )
            )

    def _late(self, sp: Any, base: str) -> list[Violation]:
        """Children that arrived before this span and named it as their parent."""
        waiting = self._pending.pop(bytes(sp.span_id), None) if sp.span_id else None
        out: list[Violation] = []
        for child_name, child_id in waiting or ():
            rule = self.rules.get(child_name)
            if rule is not None and not rule.parent_ok(sp.name):
                out.append(
                    _v(
                        base,
                        "span_parent_late",
                        f"span '{child_name}' (span id {child_id}, sent earlier) is under '{sp.name}'; "
                        f"it belongs under: {rule.allowed_parents()} (reported only: it was forwarded)",
                    )
                )
        return out
