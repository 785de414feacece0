"""`labctl up --auth`: the proxy demands the lab's bearer token, `labctl env` hands it to clients, the
emulator and `labctl check` present it, and `--no-auth` turns it off again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from labctl.state import LabState
from tests.conftest import run_labctl, started_lab


def _env_block(state_dir: Path) -> dict[str, str]:
    return json.loads(run_labctl("env", "--protocol", "http/protobuf", "--json", state_dir=state_dir).stdout)


@pytest.mark.integration
def test_auth_on_then_off(tmp_path: Path) -> None:
    state_dir = tmp_path / "lab"
    with started_lab("module-1", state_dir, "--auth") as lab:
        token = lab.settings["auth_token"]
        env = _env_block(state_dir)
        assert env["OTEL_EXPORTER_OTLP_HEADERS"] == f"Authorization=Bearer {token}"

        metrics = f"{lab.url('proxy', 'otlp_http')}/v1/metrics"
        headers = {"Content-Type": "application/x-protobuf"}
        assert requests.post(metrics, data=b"", headers=headers, timeout=5).status_code == 401
        wrong = {**headers, "Authorization": "Bearer not-the-token"}
        assert requests.post(metrics, data=b"", headers=wrong, timeout=5).status_code == 401
        right = {**headers, "Authorization": f"Bearer {token}"}
        assert requests.post(metrics, data=b"", headers=right, timeout=5).status_code == 200

        emitted = run_labctl(
            "emit",
            "--from-lab",
            "--sessions",
            "1",
            "--duration",
            "3",
            "--json",
            "--fail-on-error",
            state_dir=state_dir,
        )
        summary = json.loads(emitted.stdout)
        assert summary["shutdown_flushed"] is True
        assert all(e["failed"] == 0 for e in summary["exporters"]), summary["exporters"]
        assert sum(e["sent"] for e in summary["exporters"]) > 0, summary["exporters"]

        checked = run_labctl("check", "--layer", "1", "--json", state_dir=state_dir, check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert token not in checked.stdout + checked.stderr  # the token is never printed by check

        run_labctl("up", "module-1", "--no-auth", state_dir=state_dir)
        assert "auth_token" not in LabState.load(state_dir).settings
        assert "OTEL_EXPORTER_OTLP_HEADERS" not in _env_block(state_dir)
        assert requests.post(metrics, data=b"", headers=headers, timeout=5).status_code == 200


@pytest.mark.integration
def test_auth_guards_the_admin_plane(tmp_path: Path) -> None:
    """With `up --auth`, another local client can neither read the lab (payloads, stats, the page) nor
    re-point it (PUT/DELETE /api/upstream); labctl's own commands still work; the page works after the
    token link; a forged Host header is refused even with the token."""
    state_dir = tmp_path / "lab"
    with started_lab("module-1", state_dir, "--auth") as lab:
        token = lab.settings["auth_token"]
        admin = lab.url("proxy", "admin")
        run_labctl(
            "emit", "--from-lab", "--sessions", "1", "--duration", "2", "--fail-on-error", state_dir=state_dir
        )
        for path in ("/", "/api/payloads", "/api/stats", "/api/sessions", "/api/contract", "/api/export"):
            got = requests.get(admin + path, timeout=5)
            assert got.status_code == 401, (path, got.status_code)
            assert "Bearer" in got.headers.get("WWW-Authenticate", "")
            assert token not in got.text
        before = requests.get(
            admin + "/api/stats", timeout=5, headers={"Authorization": f"Bearer {token}"}
        ).json()
        for verb in (requests.put, requests.delete):
            got = verb(
                admin + "/api/upstream",
                json={"endpoint": "http://127.0.0.1:9"},
                timeout=5,
                headers={"Authorization": "Bearer guessed"},
            )
            assert got.status_code == 401
        after = requests.get(
            admin + "/api/stats", timeout=5, headers={"Authorization": f"Bearer {token}"}
        ).json()
        assert after["upstream"] == before["upstream"]
        # The health probes and Prometheus' scrape stay open (counters only, no payloads).
        assert requests.get(admin + "/readyz", timeout=5).status_code == 200
        assert requests.get(admin + "/metrics", timeout=5).status_code == 200

        # labctl's own commands present the token.
        sessions = run_labctl("proxy", "sessions", "--json", state_dir=state_dir)
        assert json.loads(sessions.stdout), sessions.stdout

        # The browser: the token link sets an HttpOnly cookie and drops the token from the address.
        page_url = run_labctl("url", "proxy", state_dir=state_dir).stdout.strip()
        assert page_url.endswith(f"?token={token}")
        browser = requests.Session()
        first = browser.get(page_url, timeout=5, allow_redirects=False)
        assert first.status_code == 303 and "token" not in first.headers["Location"]
        assert "HttpOnly" in first.headers["Set-Cookie"] and "SameSite=Strict" in first.headers["Set-Cookie"]
        assert browser.get(page_url, timeout=5).status_code == 200
        assert browser.get(admin + "/api/payloads", timeout=5).status_code == 200
        assert requests.get(admin + "/?token=guessed", timeout=5, allow_redirects=False).status_code == 401

        # DNS rebinding: a page served from evil.example that resolves to 127.0.0.1 sends its own Host.
        forged = {"Host": "evil.example:4320", "Authorization": f"Bearer {token}"}
        for path in ("/", "/api/payloads", "/metrics", "/readyz"):
            got = requests.get(admin + path, timeout=5, headers=forged)
            assert got.status_code == 421, (path, got.status_code)
        assert requests.put(admin + "/api/upstream", json={}, headers=forged, timeout=5).status_code == 421
        for host in ("localhost:1", "127.0.0.1", "[::1]:4320", "proxy:4320"):
            got = requests.get(
                admin + "/api/stats", timeout=5, headers={"Host": host, "Authorization": f"Bearer {token}"}
            )
            assert got.status_code == 200, host
