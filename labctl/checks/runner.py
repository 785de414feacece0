"""Run the checks: snapshot counters, send the marker, follow it layer by layer."""

from __future__ import annotations

from collections.abc import Callable

from labctl.checks import alerting, events_store, layer1, layer2, layer3, layer4, series_growth, traces_store
from labctl.checks.context import CheckContext
from labctl.checks.marker import new_marker, send_marker
from labctl.checks.result import CheckResult
from labctl.emulator.labenv import auth_token
from labctl.model import LabModel, load_model
from labctl.state import LabState


def run_checks(
    lab: LabState,
    layers: tuple[int, ...] = (),
    model: LabModel | None = None,
    progress: Callable[[str], None] = lambda msg: None,
    grafana_running: bool | None = None,
) -> tuple[CheckContext, list[CheckResult]]:
    model = model or load_model()
    layers = layers or tuple(model.layers)  # lab.yaml's layers: all of them unless asked for some
    running = model.stage_services(lab.stage, lab.runtime) if lab.stage else []
    cx = CheckContext(lab=lab, model=model, running=running, progress=progress)
    if "prometheus" in running and max(layers) >= 3:
        # Layer 3's wait for the scrapes after the lab's latest change needs nothing from layers 1-2.
        layer3.start_scrape_view(cx)
    if "proxy" in running:
        cx.before["proxy"] = layer1.proxy_stats(cx)
        cx.before["payload_seq"] = layer1.last_payload_seq(cx)
    if "collector" in running:
        cx.before["collector"] = layer2.internal_metrics(cx)
    if "proxy" in running:
        progress("sending a marker to the proxy (OTLP gRPC, like Claude Code)")
        token = auth_token(lab)  # `up --auth`: the marker presents the lab's token like any client
        headers = {"authorization": f"Bearer {token}"} if token else None
        # A proxy whose admin port does not answer is down or restarting: one short try is enough to
        # show the marker cannot get in (the SDK would retry the refused connection until its timeout).
        timeout_s = 3 if cx.before["proxy"] is not None else 1
        cx.marker = send_marker(
            lab.url("proxy", "otlp_grpc"),
            new_marker(),
            timeout_s=timeout_s,
            headers=headers,
            sparse=True,
            spans=True,
        )
    results: list[CheckResult] = []
    # Later layers need to know how far the marker got, so earlier layers always run; only the
    # requested ones are reported.
    for layer in range(1, max(layers) + 1):
        service = model.layers[layer].service
        if service not in running:
            if layer in layers:
                results.append(
                    CheckResult(
                        layer,
                        service,
                        True,
                        [f"{lab.stage} does not run {service}"],
                        skipped=True,
                    )
                )
            continue
        progress(f"checking layer {layer}")
        if layer == 1:
            found = layer1.check(cx)
        elif layer == 2:
            found = layer2.check(cx) + series_growth.check(cx)
        elif layer == 3:
            found = layer3.check(cx) + events_store.check(cx) + traces_store.check(cx)
        else:
            if grafana_running is None:
                grafana_running = _grafana_running(lab, model)
            found = layer4.check(cx, grafana_running) + alerting.check(cx)
        if layer in layers:
            results.extend(found)
    return cx, results


def _grafana_running(lab: LabState, model: LabModel) -> bool:
    from labctl.runtimes.base import get_runtime

    return get_runtime(lab, model).is_running("grafana")
