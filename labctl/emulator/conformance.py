"""How the emulator's telemetry differs from the real Claude Code's, for the same scenario.

`compare(real, emulated)` takes the shapes (labctl.contract.shape) of what each sent and lists every
difference: metric names, units, instruments, temporalities and attribute keys per metric; event names
and attribute keys per event; span names, kinds, parents and attribute keys per span; scope versions.
`REMAINING` is the list of differences the lab accepts, each with the reason; the conformance test
(tests/emulator/test_conformance_real_client.py) runs both through the same scenario and fails on any
difference that is not in it, and lab/docs/contracts.md shows it as a generated table.
"""

from __future__ import annotations

from dataclasses import dataclass

from labctl.contract.shape import TelemetryShape


@dataclass(frozen=True, order=True)
class Difference:
    signal: str  # metrics | events | spans | scopes
    name: str  # metric / event / span name ("*" = every one of that signal)
    aspect: str  # only_real | only_emulated | attribute_only_real | attribute_only_emulated | unit | ...
    detail: str = ""  # the attribute key, or "real → emulated" values


@dataclass(frozen=True)
class Remaining:
    """A difference the lab accepts: what it is and why it stays."""

    difference: Difference
    why: str


# Attribute keys only an OAuth (Claude.ai) login sends; the emulator models a class of such users, the
# offline real client runs with an API key.
_OAUTH_KEYS = ("organization.id", "user.account_uuid", "user.email")

REMAINING: tuple[Remaining, ...] = tuple(
    [
        Remaining(
            Difference(signal, "*", "attribute_only_emulated", key),
            "the emulator models Claude.ai (OAuth) logins; the offline real client uses an API key, "
            "which sends no organization, account or e-mail",
        )
        for signal in ("metrics", "events", "spans")
        for key in _OAUTH_KEYS
    ]
    + [
        Remaining(
            Difference("events", "claude_code.api_error", "only_emulated"),
            "the emulator reports each failed attempt as an api_error event (as Claude Code documents); "
            "2.1.332 reports a failure only when its retries are exhausted (then with "
            "api_retries_exhausted, which the emulator never sends: its retries always succeed in the "
            "end) and otherwise records the attempts as gen_ai.request.attempt span events",
        ),
        Remaining(
            Difference("events", "claude_code.retention_sweep", "only_real"),
            "a housekeeping event the client sends now and then (old transcripts); it says nothing "
            "about the session",
        ),
    ]
)


def _attr_keys(shape: TelemetryShape, signal: str, name: str) -> set[str]:
    item = shape.table(signal).get(name)
    return set(item.attributes) if item else set()


def _event_names(shape: TelemetryShape) -> dict[str, str]:
    """event.name (user_prompt) -> the contract's name (claude_code.user_prompt)."""
    return {n: n if n.startswith("claude_code.") else f"claude_code.{n}" for n in shape.events}


def compare(real: TelemetryShape, emulated: TelemetryShape) -> list[Difference]:
    out: list[Difference] = []
    for signal in ("metrics", "events", "spans"):
        r_names = _event_names(real) if signal == "events" else {n: n for n in real.table(signal)}
        e_names = _event_names(emulated) if signal == "events" else {n: n for n in emulated.table(signal)}
        r_by, e_by = {v: k for k, v in r_names.items()}, {v: k for k, v in e_names.items()}
        for name in sorted(set(r_by) - set(e_by)):
            out.append(Difference(signal, name, "only_real"))
        for name in sorted(set(e_by) - set(r_by)):
            out.append(Difference(signal, name, "only_emulated"))
        for name in sorted(set(r_by) & set(e_by)):
            r, e = real.table(signal)[r_by[name]], emulated.table(signal)[e_by[name]]
            rk, ek = set(r.attributes), set(e.attributes)
            out += [Difference(signal, name, "attribute_only_real", k) for k in sorted(rk - ek)]
            out += [Difference(signal, name, "attribute_only_emulated", k) for k in sorted(ek - rk)]
            for k in sorted(rk & ek):  # the value types a receiver sees (a string "15" is not an int 15)
                rt, et = r.attributes[k].types, e.attributes[k].types
                if rt != et:
                    out.append(
                        Difference(
                            signal,
                            name,
                            "attribute_type",
                            f"{k}: {'/'.join(sorted(rt))} → {'/'.join(sorted(et))}",
                        )
                    )
            for aspect in ("units", "instruments", "temporalities", "kinds"):
                rv, ev = getattr(r, aspect), getattr(e, aspect)
                if rv != ev:
                    out.append(
                        Difference(
                            signal,
                            name,
                            aspect.rstrip("s"),
                            f"{', '.join(sorted(rv))} → {', '.join(sorted(ev))}",
                        )
                    )
            # parents: a parent only one side can show (it never sent that span) is not a difference here
            rp = {p for p in r.parents if p == "(root)" or p in e_by or p in emulated.spans}
            ep = {p for p in e.parents if p == "(root)" or p in r_by or p in real.spans}
            if signal == "spans" and rp != ep:
                out.append(
                    Difference(signal, name, "parent", f"{', '.join(sorted(rp))} → {', '.join(sorted(ep))}")
                )
    r_scopes = {(s, n, v) for s, n, v in real.scopes}
    e_scopes = {(s, n, v) for s, n, v in emulated.scopes}
    for s, n, v in sorted(r_scopes ^ e_scopes):
        out.append(
            Difference(
                "scopes", n, "scope_only_real" if (s, n, v) in r_scopes else "scope_only_emulated", f"{s} {v}"
            )
        )
    return out


def unexplained(differences: list[Difference]) -> list[Difference]:
    """The differences REMAINING does not account for (a wildcard name covers every name of its signal)."""
    accepted = {r.difference for r in REMAINING}

    def covered(d: Difference) -> bool:
        return d in accepted or Difference(d.signal, "*", d.aspect, d.detail) in accepted

    return [d for d in differences if not covered(d)]
