"""Take the guides' screenshots from a real native lab in headless Chromium (no Grafana: none runs here).

    python tests/docs/make_screenshots.py        # writes lab/docs/images/*.png

Starts module-3 on free ports in a temporary state directory, sends one emulated session, then
photographs the proxy's inspector page and Prometheus' target health page at 1280×800. The lab is
stopped at the end. Chromium: LABCTL_CHROMIUM, else `chromium` on the PATH (tests/run-all.sh installs it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "lab" / "docs" / "images"
CHROMIUM = os.environ.get("LABCTL_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def labctl(state: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "labctl", "--state-dir", str(state), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"labctl {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def main() -> int:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    state = Path(tempfile.mkdtemp(prefix="shots-")) / "lab"
    try:
        labctl(state, "--runtime", "native", "up", "module-3", "--free-ports")
        labctl(state, "emit", "--from-lab", "--sessions", "1", "--duration", "10", "--seed", "7")
        ports = json.loads((state / "lab.json").read_text())["ports"]
        pages = {
            "inspector.png": (f"http://127.0.0.1:{ports['proxy']['admin']}/", "#payloads tbody tr"),
            "prometheus-targets.png": (f"http://127.0.0.1:{ports['prometheus']['web']}/targets", "table"),
        }
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                for name, (url, ready) in pages.items():
                    page.goto(url)
                    page.wait_for_selector(ready, timeout=30_000)
                    page.wait_for_timeout(1500)  # let live counters and the layout settle
                    page.screenshot(path=str(OUT / name))
                    print(f"wrote {(OUT / name).relative_to(REPO)}")
            finally:
                browser.close()
    finally:
        subprocess.run(
            [sys.executable, "-m", "labctl", "--state-dir", str(state), "down", "--volumes"],
            cwd=REPO,
            capture_output=True,
            check=False,
        )
        shutil.rmtree(state.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
