"""The live inspector page in headless Chromium: a payload sent now shows up without a reload."""

from __future__ import annotations

import os
import shutil

import pytest

from labctl.contract.samples import Point, metrics_request, session_attrs

# tests/run-all.sh installs Debian's chromium (no browser download); LABCTL_CHROMIUM points elsewhere.
CHROMIUM = os.environ.get("LABCTL_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.mark.integration
def test_page_shows_a_payload_just_sent_without_reload(start_proxy) -> None:
    from playwright.sync_api import expect, sync_playwright

    proxy = start_proxy(alerts=[{"name": "pricey-session", "kind": "session_cost", "threshold": 0.5}])
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page()
            page.goto(proxy.admin + "/")
            expect(page.locator("#live")).to_contain_text("live", timeout=15_000)
            expect(page.locator("#payloads tbody")).to_contain_text("waiting for the first export")
            # a marker in the page's JS state: if the page reloaded, it would be gone
            page.evaluate("window.__marker = 'still-the-same-page'")

            a = session_attrs("sess-page-test")
            req = metrics_request(
                [
                    Point("claude_code.token.usage", 4242, {**a, "model": "claude-opus", "type": "input"}),
                    Point("claude_code.token.usage", 7, {**a, "model": "claude-opus", "type": "bogus"}),
                    Point("claude_code.cost.usage", 0.75, {**a, "model": "claude-opus"}),
                    Point("claude_code.active_time.total", 12.5, {**a, "type": "user"}),
                    Point("claude_code.active_time.total", 3, {**a, "type": "cli"}),
                ]
            )
            assert proxy.send("metrics", req).status_code == 200

            row = page.locator("#payloads tbody tr.payload").first
            expect(row).to_contain_text("metrics", timeout=15_000)
            expect(row).to_contain_text("5 (1 violating)")
            # the header counts requests and items, each labelled as what it is
            expect(page.locator("#status")).to_contain_text("requests 1")
            expect(page.locator("#status")).to_contain_text("items ok 4")
            expect(page.locator("#status")).to_contain_text("items violating 1")
            expect(row).to_contain_text("violation")
            expect(page.locator("#violations tbody")).to_contain_text("attribute_value")
            expect(page.locator("#violations tbody")).to_contain_text("attributes[type]")
            expect(page.locator("#sessions tbody")).to_contain_text("sess-page-test")
            expect(page.locator("#sessions tbody")).to_contain_text("4,242 / 0 / 0 / 0")
            # active time as Claude Code reports it, by type (not one unexplained sum)
            expect(page.locator("#sessions thead")).to_contain_text("active s user / cli")
            expect(page.locator("#sessions tbody")).to_contain_text("12.5 / 3")
            expect(page.locator("#alerts")).to_contain_text("FIRING pricey-session")
            assert page.evaluate("window.__marker") == "still-the-same-page"

            row.click()  # the payload's points, with their verdicts
            expect(page.locator("#records tbody")).to_contain_text("4242")
            expect(page.locator("#records tbody")).to_contain_text("is 'bogus', allowed")

            # a conforming payload arrives too; the filter shows only the one with violations
            ok = metrics_request([Point("claude_code.commit.count", 1, a)])
            assert proxy.send("metrics", ok).status_code == 200
            expect(page.locator("#payloads tbody tr.payload")).to_have_count(2, timeout=15_000)
            page.check("#only-violations")
            expect(page.locator("#payloads tbody tr.payload")).to_have_count(1)
            expect(page.locator("#payloads tbody tr.payload").first).to_contain_text("violation")
            assert page.evaluate("window.__marker") == "still-the-same-page"
        finally:
            browser.close()
