"""`labctl check` against a real native module-4 lab (no Grafana binary here: the panels' PromQL is
evaluated against Prometheus directly, and the report says so)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_labctl

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_check_follows_the_marker_through_every_layer(native_lab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lab = native_lab("module-4")
    res = run_labctl("check", "--json", state_dir=lab.dir, check=False)
    report = json.loads(res.stdout)
    assert res.returncode == 0, json.dumps(report, indent=1)
    by_name = {(r["layer"], r["name"]): r for r in report["results"]}
    marker = report["marker"]
    assert marker.startswith("check-")
    # Layer 1: received and judged by the contract.
    assert any("verdict ok" in e for e in by_name[(1, "contract verdict")]["evidence"])
    # Layer 2: the Collector's own counters moved.
    assert any("receiver accepted +14" in e for e in by_name[(2, "collector pipeline")]["evidence"])
    # Layer 3: the marker's series are in Prometheus; the pipeline rules are loaded.
    assert any(f"lab_marker={marker}" in e for e in by_name[(3, "marker stored")]["evidence"])
    assert any(
        "pipeline-health alert rules loaded" in e for e in by_name[(3, "alert rules & alerts")]["evidence"]
    )
    # Layer 4: no Grafana binary, every panel query evaluated directly and returning data.
    grafana = by_name[(4, "grafana")]
    assert "evaluated against Prometheus directly" in grafana["evidence"][0]
    boards = [r for r in report["results"] if r["name"].startswith("dashboard ")]
    assert {b["name"] for b in boards} == {"dashboard claude-code-usage", "dashboard pipeline-health"}
    for board in boards:
        assert board["verdict"] == "ok", board

    # --layer narrows the report (the marker still goes through the earlier layers).
    res = run_labctl("check", "--layer", "3", "--json", state_dir=lab.dir, check=False)
    assert res.returncode == 0
    assert {r["layer"] for r in json.loads(res.stdout)["results"]} == {3}
    # The table names each layer and the marker.
    table = run_labctl("check", state_dir=lab.dir, check=False)
    assert (
        table.returncode == 0
        and "layer 4 · visualization" in table.stdout
        and "all checked layers are green" in table.stdout
    )


def test_check_without_a_lab_is_a_clear_error(tmp_path: Path) -> None:
    res = run_labctl("check", state_dir=tmp_path / "nolab", check=False)
    assert res.returncode == 2
    assert "no lab is running" in res.stderr


def test_check_rejects_an_unknown_layer(tmp_path: Path) -> None:
    res = run_labctl("check", "--layer", "7", state_dir=tmp_path / "nolab", check=False)
    assert res.returncode == 2 and "--layer 7 does not exist" in res.stderr


def test_module_1_checks_the_proxy_only_and_faults_need_later_modules(native_lab) -> None:  # type: ignore[no-untyped-def]
    lab = native_lab("module-1")
    res = run_labctl("check", "--json", state_dir=lab.dir, check=False)
    report = json.loads(res.stdout)
    assert res.returncode == 0, json.dumps(report, indent=1)
    verdicts = {(r["layer"], r["verdict"]) for r in report["results"]}
    assert (1, "ok") in verdicts and {(2, "skip"), (3, "skip"), (4, "skip")} <= verdicts
    broke = run_labctl("break", "network", state_dir=lab.dir, check=False)
    assert broke.returncode == 2
    assert "needs collector, which module-1 does not run" in broke.stderr
    assert json.loads(run_labctl("faults", "--json", state_dir=lab.dir).stdout) == []


class ThrottlingGateway:
    """What sits in front of a Collector under load (a load balancer or a gateway Collector): while
    `throttle` is on it answers every OTLP/HTTP export with 503 and `Retry-After: 30`; then it passes
    requests on to the real Collector. A real HTTP server on a free loopback port."""

    def __init__(self, collector_http: str) -> None:
        import http.server
        import threading

        import requests

        gateway = self
        self.throttle = True
        self.throttled = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if gateway.throttle:
                    gateway.throttled += 1
                    self.send_response(503)
                    self.send_header("Retry-After", "30")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                upstream = requests.post(
                    collector_http + self.path,
                    data=body,
                    timeout=5,
                    headers={"Content-Type": self.headers.get("Content-Type", "")},
                )
                self.send_response(upstream.status_code)
                self.send_header(
                    "Content-Type", upstream.headers.get("Content-Type", "application/x-protobuf")
                )
                self.send_header("Content-Length", str(len(upstream.content)))
                self.end_headers()
                self.wfile.write(upstream.content)

            def log_message(self, *args: object) -> None: ...

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_check_names_a_proxy_still_in_backoff_when_the_upstream_answers_again(native_lab) -> None:  # type: ignore[no-untyped-def]
    """The upstream asked the proxy to come back in 30 s; it answers again before that. Layer 2 is not
    green yet, and `check` says why: the proxy is in backoff, the data goes out on its next retry."""
    import requests

    from labctl.checks.marker import send_marker
    from tests.conftest import wait_for

    lab = native_lab("module-2")
    admin = lab.url("proxy", "admin")
    gateway = ThrottlingGateway(lab.url("collector", "otlp_http"))
    try:
        # The running proxy, retargeted at the gateway (its admin API; no restart).
        put = requests.put(
            admin + "/api/upstream", json={"endpoint": gateway.url, "protocol": "http/protobuf"}, timeout=5
        )
        assert put.status_code == 200, put.text
        assert send_marker(lab.url("proxy", "otlp_grpc"), "backoff-live", timeout_s=3).sent_ok

        def backing_off() -> dict | None:  # type: ignore[type-arg]
            upstream = requests.get(admin + "/api/stats", timeout=5).json()["upstream"]
            return (
                upstream
                if upstream["state"] == "retrying" and (upstream["next_attempt_in_s"] or 0) > 20
                else None
            )

        wait_for("the proxy to honour Retry-After: 30", backing_off, timeout=15, interval=0.2)
        assert gateway.throttled >= 1
        gateway.throttle = False  # the upstream answers again; the proxy does not know before its retry

        res = run_labctl("check", "--layer", "2", "--json", state_dir=lab.dir, check=False)
        report = json.loads(res.stdout)
        assert res.returncode == 12, json.dumps(report, indent=1)
        delivery = next(r for r in report["results"] if r["name"] == "proxy → collector")
        assert delivery["verdict"] == "FAIL", delivery
        assert "the proxy is in backoff after earlier failed attempts (retrying in" in delivery["cause"], (
            delivery
        )
        assert "next_attempt_in_s" in delivery["hint"] and delivery["playbook"] == "upstream-unreachable"
        assert any("empty OTLP export with the proxy's headers: OK" in e for e in delivery["evidence"]), (
            delivery
        )
    finally:
        requests.delete(admin + "/api/upstream", timeout=5)
        gateway.close()
