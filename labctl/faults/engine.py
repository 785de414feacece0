"""break / heal / list: option parsing, conflicts, verification and persistence in lab.json `faults`."""

from __future__ import annotations

import difflib
import time
from typing import Any

from labctl.errors import LabError
from labctl.faults.base import Fault, FaultContext, wait_until
from labctl.faults.records import ActiveFault
from labctl.faults.registry import FAULTS
from labctl.model import LabModel, load_model
from labctl.runtimes.base import get_runtime, http_json
from labctl.state import LabState


def get_fault(name: str) -> Fault:
    try:
        return FAULTS[name]
    except KeyError:
        # Names only (every summary made a 20-line hint), and the likely one for a typo first.
        close = difflib.get_close_matches(name, list(FAULTS), n=1)
        raise LabError(
            f"unknown fault {name!r}" + (f": did you mean {close[0]!r}?" if close else ""),
            f"one of: {', '.join(FAULTS)} (`labctl faults --all` says what each does)",
        ) from None


def parse_options(fault: Fault, args: list[str]) -> dict[str, Any]:
    """`--key value`, `--key=value`, `key=value`, or one bare value for the positional option."""
    opts: dict[str, Any] = {}
    rest = list(args)
    while rest:
        item = rest.pop(0)
        if item.startswith("--"):
            key, eq, value = item[2:].partition("=")
            if not eq:
                if not rest:
                    raise LabError(f"{fault.name}: --{key} needs a value", _usage(fault))
                value = rest.pop(0)
        elif "=" in item:
            key, _, value = item.partition("=")
        else:
            positional = [o for o in fault.options if o.positional]
            if not positional or positional[0].name in opts:
                raise LabError(f"{fault.name}: unexpected argument {item!r}", _usage(fault))
            key, value = positional[0].name, item
        opt = fault.option(key.replace("_", "-"))
        opts[opt.name] = opt.parse(fault.name, value)
    for opt in fault.options:
        opts.setdefault(opt.name, opt.default)
    return opts


def _usage(fault: Fault) -> str:
    parts = []
    for o in fault.options:
        what = "|".join(o.choices) if o.choices else ("N" if o.kind is int else "VALUE")
        parts.append(f"[--{o.name} {what}] (default {o.default}: {o.help})")
    return (
        f"usage: labctl break {fault.name} " + " ".join(parts)
        if parts
        else f"usage: labctl break {fault.name}"
    )


def context(lab: LabState | None = None, model: LabModel | None = None) -> FaultContext:
    lab = lab or LabState.current()
    model = model or load_model()
    return FaultContext(lab=lab, runtime=get_runtime(lab, model), model=model)


def break_fault(
    ctx: FaultContext, name: str, args: list[str], hidden: bool = False, opts: dict[str, Any] | None = None
) -> ActiveFault:
    """Apply, persist, verify. `hidden`: a blind challenge (labctl/faults/blind.py); its errors do not
    name another hidden fault either."""
    fault = get_fault(name)
    opts = parse_options(fault, args) if opts is None else opts
    ctx.refresh()
    if name in ctx.lab.faults:
        if ctx.lab.faults[name].hidden or hidden:
            raise LabError(
                "a hidden fault is active and already changes this part of the lab",
                "`labctl reveal` grades the diagnosis and heals it; then break again",
            )
        raise LabError(f"fault {name!r} is already active", f"heal it first: `labctl heal {name}`")
    keys = fault.touches(opts)
    for other, active in ctx.lab.faults.items():
        clash = keys & FAULTS[other].touches(active.options) if other in FAULTS else set()
        if clash and (hidden or active.hidden):
            raise LabError(
                "a hidden fault is active and already changes this part of the lab",
                "`labctl reveal` grades the diagnosis and heals it; then break again",
            )
        if clash:
            raise LabError(
                f"fault {other!r} already changes {', '.join(sorted(clash))}",
                f"heal it first: `labctl heal {other}`",
            )
    missing = [s for s in fault.needs if s not in ctx.running]
    if missing:
        raise LabError(
            f"{name} needs {', '.join(missing)}, which {ctx.lab.stage} does not run",
            "start a later module, e.g. `labctl up module-3`",
        )
    if ctx.lab.runtime not in fault.runtimes:
        raise LabError(
            f"{name} cannot be applied on the {ctx.lab.runtime} runtime",
            f"it runs on: {', '.join(fault.runtimes)}",
        )
    started = time.monotonic()
    ctx.quiet = hidden  # a hidden fault's changes leave no trace in the services' own logs
    record = fault.apply(ctx, opts)
    entry = ActiveFault(
        record=record,
        options=opts,
        since=time.time(),
        hidden=hidden,
        layer=fault.layer_for(ctx.model, opts),
        playbook=fault.playbook,
        alert=fault.alert(opts),
    )
    _persist(ctx, name, entry)  # before verify: a failed verify must still be healable
    try:
        evidence = fault.verify(ctx, record)
    except LabError as exc:
        heal_fault(ctx, name)
        if hidden:
            raise LabError(
                f"the hidden fault did not take effect, so it was undone: {exc.message}",
                exc.hint or "see `labctl status`; try another seed",
            ) from None
        raise LabError(
            f"{name} did not take effect, so it was undone: {exc.message}",
            exc.hint or "see `labctl status` and the service logs",
        ) from None
    entry.evidence = evidence
    entry.seconds = round(time.monotonic() - started, 2)
    _persist(ctx, name, entry)
    return entry


def _persist(ctx: FaultContext, name: str, entry: ActiveFault | None, healed_at: float | None = None) -> None:
    ctx.refresh()
    if entry is None:
        ctx.lab.faults.pop(name, None)
    else:
        ctx.lab.faults[name] = entry
    if healed_at is not None:  # `labctl check` waits for scrapes newer than this (layer3._targets)
        ctx.lab.settings["healed_at"] = healed_at
    ctx.lab.save()
    ctx.runtime.lab = ctx.lab


def heal_fault(ctx: FaultContext, name: str) -> float:
    ctx.refresh()
    if name not in ctx.lab.faults:
        active = ", ".join(ctx.lab.faults) or "none"
        if name not in FAULTS:
            get_fault(name)
        raise LabError(f"fault {name!r} is not active", f"active faults: {active}")
    started = time.monotonic()
    entry = ctx.lab.faults[name]
    ctx.quiet = entry.hidden  # undoing a hidden fault leaves no trace in the logs either
    FAULTS[name].heal(ctx, entry.record)
    ctx.quiet = False
    _persist(ctx, name, None, healed_at=time.time())
    return round(time.monotonic() - started, 2)


def await_usable(ctx: FaultContext, timeout: float = 15.0) -> tuple[list[str], list[str]]:
    """After a heal: wait until the proxy delivers again (it may sit in its retry backoff; its upstream is
    told to retry now). Returns (what still does not work, scrape targets Prometheus last saw down).
    Prometheus' next scrape is not waited for (at most one interval): `labctl check` waits for it."""
    ctx.refresh()
    # With other faults still active a hop may rightly stay broken: nothing to wait for.
    if ctx.lab.faults:
        return [], []
    pending = _await_proxy(ctx, timeout)
    return ([pending] if pending else []), _scrapes_down(ctx)


def _await_proxy(ctx: FaultContext, timeout: float) -> str | None:
    if "proxy" not in ctx.running or not ctx.runtime.is_running("proxy"):
        return None
    from labctl.faults import proxy_admin

    url = ctx.lab.url("proxy", "admin") + "/api/stats"
    seen: dict[str, Any] = {}
    nudged = [0.0]

    def delivering() -> bool:
        answer = http_json(url, headers=ctx.lab.admin_headers())  # no requests import: it costs a heal
        if answer is None or not isinstance(answer[1], dict):
            return False
        seen.update(answer[1].get("upstream") or {})
        if seen.get("state") in ("ok", "idle", "none"):
            return True
        # The upstream is back: end the proxy's backoff instead of waiting it out. Again every half
        # second, because a service that just started may answer its health check a moment before its
        # OTLP port listens, and the first retry then only lengthens the backoff.
        if time.monotonic() - nudged[0] >= 0.5:
            nudged[0] = time.monotonic()
            proxy_admin.retry_now(ctx)
        return False

    if wait_until("proxy delivering", delivering, timeout=timeout, interval=0.25):
        return None
    retry_in = seen.get("next_attempt_in_s")
    return (
        f"the proxy's upstream is still {seen.get('state', 'unknown')}"
        + (f" (next attempt in {retry_in} s)" if retry_in is not None else "")
        + (f": {str(seen.get('last_error'))[:160]}" if seen.get("last_error") else "")
    )


def _scrapes_down(ctx: FaultContext) -> list[str]:
    """Scrape URLs of the lab's services whose last scrape failed (one look, no waiting)."""
    if "prometheus" not in ctx.running or not ctx.runtime.is_running("prometheus"):
        return []
    from labctl import scrape_targets

    active = scrape_targets.read(ctx.lab.url("prometheus", "web"), timeout=1) or []
    return [t.scrape_url for t in scrape_targets.down(scrape_targets.of_lab(active, ctx.running))]


def heal_all(ctx: FaultContext) -> dict[str, float]:
    ctx.refresh()
    # Newest first: undo in the reverse order of application.
    names = sorted(ctx.lab.faults, key=lambda n: ctx.lab.faults[n].since, reverse=True)
    return {n: heal_fault(ctx, n) for n in names}


def active_faults(lab: LabState) -> list[dict[str, Any]]:
    return [{"name": n, **e.public()} for n, e in lab.faults.items()]


def forget_faults(lab: LabState) -> list[str]:
    """Undo every active fault in the lab's *state* only, without restarting anything (for `labctl down`):
    each record takes its own changes out of lab.json and the files it wrote (labctl/faults/records.py),
    so the next `labctl up` starts the lab as it was before the faults."""
    if lab.salvaged:  # another labctl's state: its records are unreadable, its relays' modes are not
        _reset_relay_modes(lab)
        return []
    names = list(lab.faults)
    for name in names:
        lab.faults.pop(name).forget(lab)
    if names:
        lab.save()
    return names


def _reset_relay_modes(lab: LabState) -> None:
    from labctl.faults.relay_switch import MODE_FILE, reset_saved_mode

    for saved in (lab.dir / "services").glob(f"*/data/{MODE_FILE}"):
        reset_saved_mode(lab, saved.parent.parent.name)
