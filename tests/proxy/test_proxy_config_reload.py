"""proxy.yaml reload on a running proxy process (POST /api/reload and SIGHUP): live settings take effect
on the same connection, restart-only settings are reported as pending, a broken edit changes nothing.
And the forwarding hold `labctl reload collector` uses: spooled while held, all sent on release."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml
from proxy_harness import CONTRACT, make_config, wait_for
from proxy_payloads import token_usage
from proxy_process import REPO, ProxyProcess

from labctl.state import free_port

pytestmark = pytest.mark.integration

PB = {"Content-Type": "application/x-protobuf"}


def _edit(proxy: ProxyProcess, **sections: object) -> None:
    raw = yaml.safe_load(proxy.config_path.read_text())
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    proxy.config_path.write_text(yaml.safe_dump(raw))


def _post(session: requests.Session, proxy: ProxyProcess, token: str = "") -> int:
    headers = {**PB, **({"Authorization": f"Bearer {token}"} if token else {})}
    r = session.post(
        proxy.http + "/v1/metrics", data=token_usage(3).SerializeToString(), headers=headers, timeout=10
    )
    return r.status_code


def test_live_settings_apply_on_the_same_connection_and_restart_ones_wait(tmp_path: Path) -> None:
    proxy = ProxyProcess(make_config(tmp_path / "data"), tmp_path).start()
    try:
        with requests.Session() as s:  # one keep-alive connection throughout
            assert _post(s, proxy) == 200
            _edit(
                proxy,
                auth={"bearer_token": "reloaded-token"},
                contract={"mode": "enforce"},
                limits={"retry_after": "7s"},
                spool={"max_bytes": "1MiB"},
            )
            r = requests.post(proxy.admin + "/api/reload", timeout=10)
            assert r.status_code == 200, r.text
            answer = r.json()
            assert answer["version"] == 2
            assert set(answer["applied"]) == {"auth.bearer_token", "contract.mode", "limits.retry_after"}
            assert answer["restart_needed"] == ["spool.max_bytes"]
            # The token is now required, on the connection opened before the reload — and by the admin plane.
            assert _post(s, proxy) == 401
            assert _post(s, proxy, "reloaded-token") == 200
            assert requests.get(proxy.admin + "/api/stats", timeout=5).status_code == 401
            proxy.raw["auth"] = {"bearer_token": "reloaded-token"}
            stats = proxy.stats()
            assert stats["mode"] == "enforce"
            assert stats["config"]["version"] == 2 and stats["config"]["restart_needed"] == [
                "spool.max_bytes"
            ]
            # Reloading the same file again changes nothing and keeps the restart note.
            again = requests.post(
                proxy.admin + "/api/reload", timeout=10, headers={"Authorization": "Bearer reloaded-token"}
            ).json()
            assert again == {"version": 2, "applied": [], "restart_needed": ["spool.max_bytes"]}
    finally:
        proxy.stop()


def test_a_broken_edit_is_refused_and_the_old_config_keeps_serving(tmp_path: Path) -> None:
    proxy = ProxyProcess(make_config(tmp_path / "data"), tmp_path).start()
    try:
        good = proxy.config_path.read_text()
        proxy.config_path.write_text(good + "spool:\n  overflow: sideways\n")
        r = requests.post(proxy.admin + "/api/reload", timeout=10)
        assert r.status_code == 400
        assert r.json()["error"] == "spool.overflow: 'sideways' is not one of reject, drop_oldest"
        proxy.config_path.write_text("listen: [not, a, mapping\n")
        r = requests.post(proxy.admin + "/api/reload", timeout=10)
        assert (
            r.status_code == 400
            and "is not valid YAML at line 2, column 1: expected ',' or ']'" in r.json()["error"]
        )
        stats = proxy.stats()
        assert stats["config"]["version"] == 1
        assert "not valid YAML" in stats["config"]["last_reload_error"]
        with requests.Session() as s:
            assert _post(s, proxy) == 200
    finally:
        proxy.stop()


def test_sighup_reloads_instead_of_ending_the_proxy(tmp_path: Path) -> None:
    proxy = ProxyProcess(make_config(tmp_path / "data"), tmp_path).start()
    try:
        _edit(proxy, contract={"mode": "enforce"})
        assert proxy.proc is not None
        proxy.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: proxy.stats()["config"]["version"] == 2, what="the SIGHUP reload")
        assert proxy.proc.poll() is None and proxy.stats()["mode"] == "enforce"
    finally:
        proxy.stop()


def test_upstream_changes_live_and_the_spool_goes_with_it(tmp_path: Path) -> None:
    # Two upstreams that refuse (nothing listens): the data stays spooled across the switch.
    first, second = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    raw = make_config(
        tmp_path / "data",
        upstream={
            "endpoint": first,
            "protocol": "http/protobuf",
            "retry": {"initial_interval": "50ms", "max_interval": "200ms"},
        },
    )
    proxy = ProxyProcess(raw, tmp_path).start()
    try:
        with requests.Session() as s:
            assert _post(s, proxy) == 200
        wait_for(lambda: proxy.stats()["gauges"]["spool_rows"] == 1, what="the request to be spooled")
        _edit(proxy, upstream={"endpoint": second})
        answer = requests.post(proxy.admin + "/api/reload", timeout=10).json()
        assert answer["applied"] == ["upstream"] and answer["restart_needed"] == []
        stats = proxy.stats()
        assert stats["upstream"]["endpoint"] == second and stats["upstream"]["configured"] is True
        assert stats["gauges"]["spool_rows"] == 1
    finally:
        proxy.stop()


def test_dry_run_names_the_exact_error(tmp_path: Path) -> None:
    config = tmp_path / "proxy.yaml"
    raw = make_config(tmp_path / "data")
    raw["contract"] = {"path": str(CONTRACT), "mode": "sometimes"}
    config.write_text(yaml.safe_dump(raw))
    out = subprocess.run(
        [sys.executable, "-m", "labctl", "proxy", "serve", "--config", str(config), "--check"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert out.returncode == 2  # LabError
    assert "contract.mode: 'sometimes' is not one of observe, enforce" in out.stdout + out.stderr


def test_a_broken_inspection_section_is_refused_although_it_applies_only_at_restart(tmp_path: Path) -> None:
    proxy = ProxyProcess(make_config(tmp_path / "data"), tmp_path).start()
    try:
        _edit(proxy, inspect={"console": "loud"})
        r = requests.post(proxy.admin + "/api/reload", timeout=10)
        assert r.status_code == 400 and "inspect.console" in r.json()["error"]
        assert proxy.stats()["config"] == {
            "path": str(proxy.config_path),
            "version": 1,
            "restart_needed": [],
            "last_reload_error": r.json()["error"],
        }
    finally:
        proxy.stop()


def test_a_forwarding_hold_spools_and_a_release_sends_everything(tmp_path: Path) -> None:
    # What `labctl reload collector` relies on: while held, data is acknowledged and spooled, nothing is
    # sent; on release the spool goes out; a hold ends by itself after its time.
    sink = ProxyProcess(make_config(tmp_path / "sink-data"), tmp_path / "sink").start()
    raw = make_config(
        tmp_path / "front-data",
        upstream={"endpoint": "http://" + sink.raw["listen"]["otlp_grpc"], "protocol": "grpc"},
    )
    front = ProxyProcess(raw, tmp_path / "front").start()
    try:

        def put(body: dict) -> requests.Response:  # type: ignore[type-arg]
            return requests.put(front.admin + "/api/forwarding", json=body, timeout=10)

        assert put({"hold": True, "seconds": 30}).json() == {"held": True, "spooled_rows": 0}
        with requests.Session() as s:
            assert all(_post(s, front) == 200 for _ in range(3))
        time.sleep(0.5)
        assert (
            front.stats()["gauges"]["spool_rows"] == 3
            and front.stats()["counters"]["forwarded"]["metrics"] == 0
        )
        assert front.stats()["upstream"]["held"] is True
        assert put({"hold": False}).json()["held"] is False
        wait_for(lambda: front.stats()["counters"]["forwarded"]["metrics"] == 9, what="the spool to be sent")
        assert sink.stats()["counters"]["received"]["metrics"] == 9
        # A hold ends by itself.
        put({"hold": True, "seconds": 0.5})
        with requests.Session() as s:
            assert _post(s, front) == 200
        wait_for(lambda: front.stats()["counters"]["forwarded"]["metrics"] == 12, what="the hold to expire")
        assert put({"hold": True, "seconds": 500}).status_code == 400
    finally:
        front.stop()
        sink.stop()


def test_contract_switches_live_through_the_admin_api_and_back(tmp_path: Path) -> None:
    """PUT /api/contract checks against another file from the next request on, with no restart; a file
    that does not load changes nothing; DELETE goes back to the configured one (labctl's contract faults)."""
    variant = tmp_path / "variant.yaml"
    raw = yaml.safe_load(CONTRACT.read_text())
    for rule in raw["metrics"].values():
        rule.setdefault("attributes", {})["team.id"] = {"requirement": "required", "type": "string"}
    variant.write_text(yaml.safe_dump(raw))
    broken = tmp_path / "broken.yaml"
    broken.write_text("metrics: [not, a, mapping\n")
    proxy = ProxyProcess(make_config(tmp_path / "data"), tmp_path).start()
    try:
        pid = proxy.proc.pid
        api = proxy.admin + "/api/contract"

        def violations() -> int:
            return len(requests.get(proxy.admin + "/api/violations", timeout=5).json()["violations"])

        with requests.Session() as s:
            assert _post(s, proxy) == 200
            clean = violations()
            r = requests.put(api, json={"path": str(variant)}, timeout=10)
            assert r.status_code == 200, r.text
            assert r.json()["path"] == str(variant) and r.json()["version"] == 2
            assert requests.get(api, timeout=5).json()["path"] == str(variant)
            assert _post(s, proxy) == 200  # observe mode: accepted, and now a violation (no team.id)
            assert violations() > clean
            for body, code in (
                ({"path": str(broken)}, 409),  # does not load: the contract in force stays
                ({"path": str(tmp_path / "missing.yaml")}, 404),
                ({"path": str(tmp_path)}, 404),  # a folder
                ({"nope": 1}, 400),
            ):
                refused = requests.put(api, json=body, timeout=10)
                assert refused.status_code == code and refused.json()["error"], (body, refused.text)
            assert requests.get(api, timeout=5).json()["path"] == str(variant)  # unchanged
            back = requests.delete(api, timeout=10)
            assert back.status_code == 200 and back.json()["path"] == str(CONTRACT)
            after = violations()
            assert _post(s, proxy) == 200
            assert violations() == after  # the configured contract again: no new violation
        assert proxy.proc.pid == pid and proxy.proc.poll() is None  # the same process throughout
    finally:
        proxy.stop()
