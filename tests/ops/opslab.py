"""A native lab run from a private copy of the repository, so a test can edit the lab's configuration
files the way a student does (collector-configs/base.yaml, lab/prometheus/, lab/proxy/proxy.yaml) without
touching the checkout other tests read. Plus a client that exports every second, and the totals a student
compares: the proxy's count, Prometheus' stored samples, the dashboard's query."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any, Self

import requests

from labctl.checks.layer4 import _BUILTINS
from labctl.state import LabState
from tests.conftest import kill_leftovers, labctl_env

REPO = Path(__file__).resolve().parents[2]
COPIED = ("labctl", "lab", "collector-configs", "dashboards", "compose", "pyproject.toml")


def copy_repo(dest: Path) -> Path:
    dest.mkdir(parents=True)
    for name in COPIED:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, dest / name)
    return dest


class CopyLab:
    def __init__(self, root: Path, state_dir: Path) -> None:
        self.root, self.dir = root, state_dir

    def env(self, **extra: str) -> dict[str, str]:
        return labctl_env(PYTHONPATH=str(self.root), **extra)

    def cli(self, *args: str, check: bool = True, timeout: float = 240) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "labctl", "--state-dir", str(self.dir), *args]
        res = subprocess.run(
            cmd, capture_output=True, text=True, env=self.env(), cwd=self.root, timeout=timeout, check=False
        )
        if check and res.returncode != 0:
            raise AssertionError(
                f"`labctl {' '.join(args)}` exited {res.returncode}\n{res.stdout}\n{res.stderr}"
            )
        return res

    @property
    def state(self) -> LabState:
        return LabState.load(self.dir)

    def path(self, rel: str) -> Path:
        return self.root / rel

    def edit(self, rel: str, change: Callable[[str], str]) -> str:
        """Apply `change` to a file of the copy; returns the old text (to put it back)."""
        path = self.path(rel)
        old = path.read_text()
        new = change(old)
        assert new != old, f"the edit of {rel} changed nothing"
        path.write_text(new)
        return old

    def save_by_rename(self, rel: str, change: Callable[[str], str]) -> str:
        """Edit a file the way many editors and `sed -i` save it: a new file renamed over the old one (a new
        inode: a single-file bind mount would keep showing the old one). Returns the old text."""
        path = self.path(rel)
        old = path.read_text()
        new = change(old)
        assert new != old, f"the edit of {rel} changed nothing"
        tmp = path.with_name(f".{path.name}.new")
        tmp.write_text(new)
        os.replace(tmp, path)
        return old

    def prom(self, path: str, **params: str) -> Any:
        r = requests.get(self.state.url("prometheus", "web") + path, params=params, timeout=10)
        r.raise_for_status()
        return r.json()["data"]

    def query_value(self, expr: str, at: float | None = None) -> float | None:
        params = {"query": expr, **({"time": f"{at:.3f}"} if at is not None else {})}
        res = self.prom("/api/v1/query", **params)["result"]
        return float(res[0]["value"][1]) if res else None


@contextlib.contextmanager
def copy_lab(tmp_path: Path, stage: str) -> Iterator[CopyLab]:
    lab = CopyLab(copy_repo(tmp_path / "repo"), tmp_path / "lab")
    try:
        lab.cli("--runtime", "native", "up", stage, "--free-ports")
        yield lab
    finally:
        if LabState.exists(lab.dir):
            lab.cli("down", check=False)
        kill_leftovers(lab.dir)


# --- module 2's exercise: the edit a student makes to the Collector's pipeline ----------------------------------


def guide_blocks(module: str, heading: str, lang: str = "bash") -> list[list[str]]:
    """The lines of each fenced block (of one language) in a section of a module's guide, as shown; in a
    bash block, a command continued with `\\` or inside a quoted string is one entry (with its newlines)."""
    guide = (REPO / "lab" / "modules" / module / "README.md").read_text()
    section = guide.split(f"### {heading}\n", 1)[1].split("\n### ", 1)[0]
    blocks = re.findall(rf"```{lang}\n(.*?)```", section, re.DOTALL)
    lines = [[line for line in block.splitlines() if line.strip()] for block in blocks]
    return [_commands(block) for block in lines] if lang == "bash" else lines


def _commands(lines: list[str]) -> list[str]:
    commands: list[str] = []
    for line in lines:
        if commands and _continues(commands[-1]):
            commands[-1] += "\n" + line
        else:
            commands.append(line)
    return commands


def _continues(command: str) -> bool:
    if command.endswith("\\"):
        return True
    try:
        shlex.split(command, comments=True)
    except ValueError:  # a quoted string still open: the command goes on on the next line
        return True
    return False


def as_student(lab: CopyLab, line: str) -> str:
    """One command line of a guide, run by bash with this lab's `labctl` (a wrapper first on PATH); its
    stdout. Fails with the output when the line exits non-zero."""
    bin_dir = lab.root / ".student-bin"
    if not bin_dir.exists():
        bin_dir.mkdir()
        wrapper = bin_dir / "labctl"
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m labctl --state-dir "{lab.dir}" "$@"\n')
        wrapper.chmod(0o755)
    env = lab.env()
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    res = subprocess.run(
        ["bash", "-c", line], capture_output=True, text=True, env=env, cwd=lab.root, timeout=300, check=False
    )
    assert res.returncode == 0, f"the guide's `{line}` exited {res.returncode}\n{res.stdout}\n{res.stderr}"
    return res.stdout


MODULE2_LIVE_EDIT = "3. Change the pipeline while data flows"


def module2_pipeline_edit(text: str) -> str:
    """collector-configs/base.yaml with the change module 2's exercise 3 shows (its two YAML blocks, read from
    the guide itself): the processor added under `processors:`, and the metrics pipeline's new list."""
    processor, pipeline = ("\n".join(b) + "\n" for b in guide_blocks("module-2", MODULE2_LIVE_EDIT, "yaml"))
    new_list = pipeline.strip()
    old_list = re.search(r"processors: \[memory_limiter, delta_to_cumulative, batch\]", text)
    assert old_list and new_list.startswith("processors: ["), "base.yaml's metrics pipeline changed"
    text = text.replace("\nprocessors:\n", "\nprocessors:\n" + processor, 1)
    return text.replace(old_list.group(0), new_list, 1)


def add_recording_rule(text: str) -> str:
    """A rule file with one more recording rule (lab:reload_test:tokens) in its first group."""
    import yaml

    doc = yaml.safe_load(text)
    doc["groups"][0]["rules"].append(
        {"record": "lab:reload_test:tokens", "expr": "sum(claude_code_token_usage_tokens_total)"}
    )
    return str(yaml.safe_dump(doc, sort_keys=False))


def damaged_copy(backup: Path, dest: Path, how: str) -> Path:
    """A copy of a backup, damaged: corrupt (a byte of a TSDB chunk flipped), truncated (the chunk cut in
    half), partial (no manifest) or incompatible (another Prometheus major version in the manifest)."""
    shutil.copytree(backup, dest)
    manifest = json.loads((dest / "manifest.json").read_text())
    chunk = next(rel for rel in manifest["files"] if "/chunks/" in rel)
    if how == "corrupt":
        data = bytearray((dest / chunk).read_bytes())
        data[len(data) // 2] ^= 0xFF
        (dest / chunk).write_bytes(bytes(data))
    elif how == "truncated":
        path = dest / chunk
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "partial":
        (dest / "manifest.json").unlink()
    elif how == "incompatible":
        manifest["versions"]["prometheus"] = "2.53.0"
        (dest / "manifest.json").write_text(json.dumps(manifest))
    return dest


# --- the client: Claude Code's telemetry, exported every second ----------------------------------------------


def start_client(
    lab: CopyLab, marker: str, duration: float, seed: int = 11, sessions: int = 2
) -> subprocess.Popen[str]:
    """`labctl emit` configured as a student's Claude Code would be, with a 1 s export interval."""
    env = lab.env(
        CLAUDE_CODE_ENABLE_TELEMETRY="1",
        OTEL_METRICS_EXPORTER="otlp",
        OTEL_LOGS_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
        OTEL_EXPORTER_OTLP_ENDPOINT=lab.state.url("proxy", "otlp_grpc"),
        OTEL_METRIC_EXPORT_INTERVAL="1000",
        OTEL_LOGS_EXPORT_INTERVAL="1000",
    )
    cmd = [
        sys.executable,
        "-m",
        "labctl",
        "emit",
        "--sessions",
        str(sessions),
        "--duration",
        str(duration),
        "--rate",
        "60",
        "--seed",
        str(seed),
        "--marker",
        marker,
        "--error-rate",
        "0",
        "--json",
        "--quiet",
        "--fail-on-error",
    ]
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=lab.root
    )


def client_summary(proc: subprocess.Popen[str], timeout: float = 120) -> dict[str, Any]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"the client failed (exit {proc.returncode}):\n{out}\n{err}"
    return dict(json.loads(out))


# --- totals ----------------------------------------------------------------------------------------------------


def proxy_tokens(lab: CopyLab) -> dict[str, dict[str, float]]:
    """What the proxy counted: tokens per session and type (`labctl proxy sessions --json`)."""
    sessions = json.loads(lab.cli("proxy", "sessions", "--json").stdout)
    return {s["session_id"]: {k: float(v) for k, v in s["tokens"].items() if v} for s in sessions}


def stored_tokens(lab: CopyLab, marker: str, window: str = "30m") -> dict[str, dict[str, float]]:
    """Every token Prometheus stored, from its raw samples: each series' first value plus every increase,
    a drop being a counter reset (the Collector's totals start again after a reload)."""
    expr = f'claude_code_token_usage_tokens_total{{lab_marker="{marker}"}}[{window}]'
    out: dict[str, dict[str, float]] = {}
    for series in lab.prom("/api/v1/query", query=expr)["result"]:
        values = [float(v) for _, v in series["values"]]
        total = values[0] + sum(b - a if b >= a else b for a, b in pairwise(values))
        m = series["metric"]
        by_type = out.setdefault(m["session_id"], {})
        by_type[m["type"]] = by_type.get(m["type"], 0.0) + total
    return out


def dashboard_expr(title: str) -> str:
    """A panel's query from dashboards/claude-code-usage.json, with Grafana's builtins as the check sets them."""
    board = json.loads((REPO / "dashboards" / "claude-code-usage.json").read_text())
    expr = next(t["expr"] for p in board["panels"] if p.get("title") == title for t in p.get("targets", []))
    for key, value in _BUILTINS.items():
        expr = expr.replace(key, value)
    return str(expr)


class Watcher:
    """Polls a query twice a second in the background: the dashboard total as a student would watch it."""

    def __init__(self, lab: CopyLab, expr: str) -> None:
        self.lab, self.expr = lab, expr
        self.values: list[tuple[float, float]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                value = self.lab.query_value(self.expr)
                if value is not None:
                    self.values.append((time.time(), value))
            except (requests.RequestException, KeyError, ValueError) as exc:
                self.errors.append(str(exc))
            self._stop.wait(0.5)

    def drops(self) -> list[tuple[float, float]]:
        """Every (before, after) where the total went down."""
        vals = [v for _, v in self.values]
        return [(a, b) for a, b in pairwise(vals) if b < a - 1e-9]


def wait_until(what: str, probe: Callable[[], Any], timeout: float = 30.0, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last value: {last!r}")


def wait_equal(what: str, probe: Callable[[], Any], want: Any, timeout: float = 30.0) -> None:
    """Poll until probe() == want; on timeout fail with both (pytest shows the difference)."""
    deadline = time.monotonic() + timeout
    while (got := probe()) != want and time.monotonic() < deadline:
        time.sleep(0.5)
    assert got == want, f"timed out after {timeout:.0f}s waiting for {what}"
