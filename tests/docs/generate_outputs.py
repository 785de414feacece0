"""Run the exercises' commands against a real native lab and write their output into the module guides.

    python tests/docs/generate_outputs.py           # run the scenario, rewrite the docs
    python tests/docs/generate_outputs.py --check   # run it, report docs whose output no longer matches
    python tests/docs/generate_outputs.py --part modules-3-4 --times   # one part; each step's seconds

Each `<!-- output:NAME -->` … `<!-- /output:NAME -->` section of a doc holds a console transcript
made here from a real run — so what a guide says a student will see is what the tool printed. The lab
runs natively in a temporary state directory; its ports are shifted by a free offset and written back
as the defaults, and the state directory is written as the default one, so the text reads as on a
student's machine. The test (test_docs_outputs.py) re-runs the scenario and compares, ignoring numbers
that change from run to run (ports, times, counts) and the width of table borders.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import fcntl
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import docsmd

REPO = docsmd.REPO
DEFAULT_STATE = "~/.local/state/labctl/default"
WIDTH = 80  # a default terminal: what a student sees
OUTPUT_RE = re.compile(
    r"(?P<open><!-- output:(?P<name>[a-z0-9-]+) -->)\n(?P<body>.*?)(?P<close><!-- /output:(?P=name) -->)",
    re.DOTALL,
)


def _typed(arg: str) -> str:
    """An argument as the student types it in a shell: quoted when it holds spaces or a `;`."""
    return f'"{arg}"' if re.search(r"[\s;]", arg) else arg


@dataclass(frozen=True)
class Step:
    section: str | None  # the doc section the transcript goes to (None: run, don't show)
    args: tuple[str, ...]  # as the student types them after `labctl`
    exit_codes: tuple[int, ...] = (0,)  # what the exercise expects; anything else stops the run
    run_extra: tuple[str, ...] = ()  # added when running only (never shown)
    shell: bool = False  # args[0] is a shell line (curl, pipes); `labctl` in it is this checkout's
    # Not reproducible as shown (a long emit, random ids): the run is shortened or seeded through
    # run_extra, and the transcript says it is representative and what varies. Its key facts (the
    # command, table rows, outcome lines) are still compared with every run.
    sample: str = ""
    in_workdir: bool = False  # the command writes a file: run it where the exercises' files go
    # Left running while the next steps run (a client exporting through a reload); its transcript is
    # taken when it ends, before the first later step that `joins`.
    background: bool = False
    joins: bool = False
    # Not a command: a change the guide has the student make by hand in the lab's files (run on the
    # part's private copy of the repository), never shown.
    edit: Callable[[Path], None] | None = None

    @property
    def shown(self) -> str:
        return self.args[0] if self.shell or self.edit else _continued(["labctl", *map(_typed, self.args)])


def _continued(words: list[str]) -> str:
    """A command as `$ ` + lines of at most WIDTH columns, continued with ` \\` before an option (never
    inside a word or between an option and its value), the way a student's shell still runs it."""
    groups: list[str] = []
    for word in words:
        if groups and not word.startswith("--"):
            groups[-1] += " " + word
        else:
            groups.append(word)
    if len("$ " + " ".join(groups)) <= WIDTH:
        return " ".join(groups)
    lines = ["$ " + groups[0]]
    for group in groups[1:]:
        # Every line but the last ends in " \\"; continuations are indented by two spaces.
        if len(lines[-1]) + 1 + len(group) + 2 > WIDTH:
            lines.append("  " + group)
        else:
            lines[-1] += " " + group
    return " \\\n".join(lines).removeprefix("$ ")


def _note(sample: str) -> str:
    """The `# representative output:` comment, wrapped at WIDTH on `# ` lines."""
    text = f"representative output: {sample}"
    wrapped = textwrap.wrap(
        text, WIDTH - 2, subsequent_indent="  ", break_long_words=False, break_on_hyphens=False
    )
    return "".join(f"# {line}\n" for line in wrapped)


MODULE2_LIVE_EDIT = "### 3. Change the pipeline while data flows"
BASE_YAML = "collector-configs/base.yaml"


def _guide_yaml_blocks() -> list[str]:
    """The YAML blocks of module 2's live-edit section, exactly as the guide shows them."""
    guide = (REPO / "lab" / "modules" / "module-2" / "README.md").read_text(encoding="utf-8")
    section = guide.split(MODULE2_LIVE_EDIT + "\n", 1)[1].split("\n### ", 1)[0]
    return re.findall(r"```yaml\n(.*?)```", section, re.DOTALL)


def add_team_processor(root: Path) -> None:
    """The guide's edit of base.yaml: its processor under `processors:`, its list for the metrics pipeline."""
    processor, pipeline = _guide_yaml_blocks()
    path = root / BASE_YAML
    text = path.read_text(encoding="utf-8")
    old_list = "processors: [memory_limiter, delta_to_cumulative, batch]"
    if "\nprocessors:\n" not in text or old_list not in text:
        raise RuntimeError(f"{BASE_YAML} no longer has the processors the module-2 guide edits")
    text = text.replace("\nprocessors:\n", "\nprocessors:\n" + processor, 1)
    path.write_text(text.replace(old_list, pipeline.strip(), 1), encoding="utf-8")


def restore_base(root: Path) -> None:
    shutil.copy2(REPO / BASE_YAML, root / BASE_YAML)


# The exercises of lab/modules, in the order a student does them, in two parts that run side by side
# (each its own lab, state dir and port offset). Within a part one lab is built up module by module.
# The build-it exercises need no lab: they run first, in a working directory of their own.
MODULES_1_2: tuple[Step, ...] = (
    Step("module-1-build", ("exercise", "start", "contract-rule")),
    Step("module-1-build", ("exercise", "check", "contract-rule"), exit_codes=(1,)),
    Step("module-2-build", ("exercise", "start", "collector-pipeline")),
    Step("module-2-build", ("exercise", "check", "collector-pipeline"), exit_codes=(1,)),
    Step("module-3-build", ("exercise", "start", "promql")),
    Step("module-3-build", ("exercise", "check", "promql"), exit_codes=(1,)),
    Step("module-3-build-scrape-rule", ("exercise", "start", "scrape-job")),
    Step("module-3-build-scrape-rule", ("exercise", "check", "scrape-job"), exit_codes=(1,)),
    Step("module-3-build-scrape-rule", ("exercise", "start", "recording-rule")),
    Step("module-3-build-scrape-rule", ("exercise", "check", "recording-rule"), exit_codes=(1,)),
    Step("module-4-build", ("exercise", "start", "dashboard-panel")),
    Step("module-4-build", ("exercise", "check", "dashboard-panel"), exit_codes=(1,)),
    Step("module-4-build-alert", ("exercise", "start", "no-data-alert")),
    Step("module-4-build-alert", ("exercise", "check", "no-data-alert"), exit_codes=(1,)),
    # What `labctl doctor` finds depends on the machine (engine, binaries, free ports, disk, memory).
    Step(
        "module-1-setup",
        ("doctor",),
        sample="your engine, binaries, disk and memory are your own",
    ),
    Step("module-1-up", ("up", "module-1"), run_extra=("--port-offset", "{offset}")),
    Step("module-1-status", ("status",)),
    Step("module-1-check", ("check", "--layer", "1")),
    Step("module-1-emit", ("env",)),
    Step(
        "module-1-emit",
        ("emit", "--from-lab", "--sessions", "2", "--duration", "20", "--seed", "7"),
        run_extra=("--duration", "3"),
        sample="a 3 s run (yours runs 20 s: more actions, exports and items)",
    ),
    Step(
        "module-1-api",
        ("curl -s $(labctl url proxy.admin)/api/stats | python -m json.tool",),
        shell=True,
        sample="counters, gauges and times vary with the sessions sent",
    ),
    Step("module-1-api", ("proxy", "sessions")),
    Step("module-1-api", ("labctl proxy export --format csv > sessions.csv",), shell=True, in_workdir=True),
    Step("module-1-contract-valid", ("contract", "check", "lab/modules/module-1/token-usage.json")),
    Step(
        "module-1-matrix",
        ("labctl matrix list | head -13",),
        shell=True,
        sample="the list's first lines; the run's times and folder",
    ),
    Step("module-1-matrix", ("matrix", "run", "--filter", "console-stdout,none-exporter")),
    Step("module-1-contract-check", ("contract", "check", "/tmp/broken.json"), exit_codes=(1,)),
    Step("module-1-break-contract", ("break", "contract")),
    Step("module-1-break-contract", ("check", "--layer", "1"), exit_codes=(11,)),
    Step("module-1-heal-contract", ("heal", "contract")),
    Step("module-1-heal-contract", ("check", "--layer", "1")),
    Step("module-1-break-cardinality", ("break", "cardinality")),
    Step("module-1-break-cardinality", ("check", "--layer", "1"), exit_codes=(11,)),
    Step("module-1-heal-cardinality", ("heal", "cardinality")),
    Step(
        "module-1-protocol-mismatch",
        (
            (
                "OTEL_EXPORTER_OTLP_PROTOCOL=grpc \\\n"
                "  OTEL_EXPORTER_OTLP_ENDPOINT=$(labctl url proxy.otlp_http) \\\n"
                "  CLAUDE_CODE_ENABLE_TELEMETRY=1 OTEL_METRICS_EXPORTER=otlp \\\n"
                "  labctl emit --sessions 1 --duration 5"
            ),
        ),
        shell=True,
        exit_codes=(4,),
        sample="the seed is random; the retries vary with timing",
    ),
    Step("module-2-up", ("up", "module-2")),
    Step("module-2-up", ("status",)),
    Step(
        "module-2-curl-health", ("curl -s $(labctl url collector.health)/ | python -m json.tool",), shell=True
    ),
    Step(
        "module-2-curl-health",
        (
            (
                "curl -s $(labctl url collector.internal)/metrics \\\n"
                "  | grep -E '^otelcol_(process_uptime|receiver_accepted)'"
            ),
        ),
        shell=True,
    ),
    Step("module-2-check", ("check", "--layer", "2")),
    Step(
        "module-2-emit",
        ("emit", "--from-lab", "--sessions", "1", "--duration", "15", "--marker", "m2-exercise"),
        run_extra=("--duration", "3", "--seed", "7"),
        sample="a 3 s run (yours runs 15 s with a random seed: more actions, exports and items)",
    ),
    # The Collector logs an event when its batch is sent, a moment after the emit returns: on a quiet
    # machine the next step came too soon and found none. Wait for it (40 tries, ~30 s at most).
    Step(
        None,
        (
            (
                "for _ in $(seq 40); do labctl logs collector | grep -q 'claude_code.api_request' && exit 0;"
                " sleep 0.25; done; exit 1"
            ),
        ),
        shell=True,
    ),
    Step(
        "module-2-collector-log",
        ("labctl logs collector | grep -m 5 'claude_code.api_request'",),
        shell=True,
        sample="one line per api_request event the Collector logged (up to 5)",
    ),
    Step(
        "module-2-exporter",
        (
            # One series, a label a line: the exposition's one line per series is 500 columns wide.
            (
                "curl -s $(labctl url collector.prom_exporter)/metrics \\\n"
                "  | grep -m 1 '^claude_code_token_usage_tokens_total' | tr '{,}' '\\n\\n\\n'"
            ),
        ),
        shell=True,
        sample="session ids, user ids, models and values vary",
    ),
    # Exercise 3: base.yaml gains a processor while a client exports; the Collector reloads under it.
    Step(
        "module-2-live-emit",
        ("emit", "--from-lab", "--sessions", "2", "--duration", "120", "--marker", "live-edit"),
        run_extra=("--duration", "8", "--seed", "7"),
        sample="an 8 s run (yours: 120 s, random seed); the counts vary",
        background=True,
    ),
    Step(None, (f"(edit {BASE_YAML} as the guide shows)",), edit=add_team_processor),
    Step("module-2-live-reload", ("reload", "collector")),
    # The client's points after the reload carry the label (the exporter shows them a batch later).
    Step(
        None,
        (
            (
                "u=$(labctl url collector.prom_exporter); for _ in $(seq 60); do"
                ' curl -s "$u/metrics" | grep -q lab_team && exit 0; sleep 0.5; done; exit 1'
            ),
        ),
        shell=True,
        joins=True,
    ),
    Step(
        "module-2-live-look",
        (
            (
                "curl -s $(labctl url collector.prom_exporter)/metrics | grep -m 3 lab_team \\\n"
                "  | grep -o '^[a-z_]*\\|lab_team=\"[a-z]*\"' | paste -d ' ' - -"
            ),
        ),
        shell=True,
        sample="the series listed first vary",
    ),
    Step(
        "module-2-live-look",
        (
            (
                "curl -s $(labctl url proxy.admin)/api/stats | python -c '\n"
                "import json, sys\n"
                'c = json.load(sys.stdin)["counters"]\n'
                'names = ("accepted", "forwarded", "retries", "dropped")\n'
                'print({k: c[k]["metrics"] for k in names})\''
            ),
        ),
        shell=True,
        sample="the counts vary with the run",
    ),
    # The guide's last word: the file put back, and reloaded.
    Step(None, (f"(put {BASE_YAML} back)",), edit=restore_base),
    Step(None, ("reload", "collector")),
    Step("module-2-break-network", ("break", "network")),
    Step("module-2-break-network", ("check", "--layer", "2"), exit_codes=(12,)),
    Step("module-2-heal-network", ("heal", "network")),
    Step("module-2-heal-network", ("check", "--layer", "2")),
    Step("module-2-break-endpoint", ("break", "endpoint")),
    Step("module-2-break-endpoint", ("check", "--layer", "2"), exit_codes=(12,)),
    Step("module-2-endpoint-kinds", ("heal", "endpoint")),
    Step("module-2-endpoint-kinds", ("break", "endpoint", "--kind", "wrong-port")),
    Step("module-2-endpoint-kinds", ("check", "--layer", "2"), exit_codes=(12,)),
    Step("module-2-endpoint-kinds", ("heal", "endpoint")),
    Step("module-2-endpoint-kinds", ("break", "endpoint", "--kind", "protocol-mismatch")),
    Step("module-2-endpoint-kinds", ("check", "--layer", "2"), exit_codes=(12,)),
    Step("module-2-endpoint-kinds", ("heal", "endpoint")),
    Step("module-2-endpoint-kinds", ("break", "endpoint", "--kind", "invalid-url")),
    Step("module-2-endpoint-kinds", ("check",), exit_codes=(11,)),
    Step("module-2-endpoint-kinds", ("heal", "endpoint")),
    Step("module-2-break-auth", ("break", "auth")),
    Step("module-2-break-auth", ("check", "--layer", "2"), exit_codes=(12,)),
    Step("module-2-heal-auth", ("heal", "auth")),
    Step("module-2-heal-auth", ("check", "--layer", "2")),
    Step(
        "module-2-blind",
        ("break", "--random", "--pool", "network,endpoint,auth,latency,collector-crash", "--seed", "12"),
    ),
    Step("module-2-blind", ("check", "--layer", "2"), exit_codes=(12,)),
    Step(
        "module-2-blind-reveal",
        (
            "diagnose",
            *("--layer", "2", "--hop", "proxy-collector", "--cause", "credentials"),
            *("--evidence", "export answers UNAUTHENTICATED; proxy state auth_failed"),
            *("--fix", "send the Collector's token"),
        ),
    ),
    Step("module-2-blind-reveal", ("reveal",)),
)

# Modules 3 and 4 start from a module-2 lab (not shown): `up module-3` then says what a student who
# came through module 2 reads (what it keeps, what restarts). Prometheus and the stores start empty
# at module 3 in either case, so nothing shown here depends on the first part's data.
MODULES_3_4: tuple[Step, ...] = (
    Step(None, ("up", "module-2"), run_extra=("--port-offset", "{offset}")),
    Step("module-3-up", ("up", "module-3")),
    Step("module-3-up", ("status",)),
    Step(
        "module-3-events",
        ("emit", "--from-lab", "--sessions", "1", "--duration", "20"),
        run_extra=("--duration", "2", "--seed", "7"),
        sample="a 2 s run (yours: 20 s, random seed, more events)",
    ),
    # The events reach VictoriaLogs a moment after the emit returns (the Collector's batch): wait until
    # their count holds still (at most ~30 s).
    Step(
        None,
        (
            (
                'v=$(labctl url victorialogs.http); q() { curl -s "$v/select/logsql/query"'
                " --data-urlencode 'query=* | stats count() n'; }; last=;"
                ' for _ in $(seq 20); do n=$(q); [ -n "$last" ] && [ "$n" = "$last" ] && grep -q [1-9] <<<"$n"'
                " && exit 0; last=$n; sleep 1.5; done; exit 1"
            ),
        ),
        shell=True,
    ),
    Step(
        "module-3-events",
        (
            (
                'curl -s "$(labctl url victorialogs.http)/select/logsql/query" \\\n'
                "  --data-urlencode 'query=* | stats by (session.id, event.name) count() n' \\\n"
                "  | python -m json.tool --json-lines"  # one JSON document a line, each over 80 columns
            ),
        ),
        shell=True,
    ),
    Step(
        "module-3-retries-emit",
        ("emit", "--from-lab", "--scenario", "retries", "--duration", "4", "--marker", "retries-1"),
        run_extra=("--seed", "7"),
        sample="the seed is random in yours",
    ),
    # Counted twice: VictoriaLogs stores the three events, Prometheus scrapes the counter (5 s).
    Step(
        None,
        (
            (
                "p=$(labctl url prometheus.web); v=$(labctl url victorialogs.http); for _ in $(seq 80); do"
                ' curl -s "$p/api/v1/query" --data-urlencode'
                " 'query=sum(claude_code_api_error_events_total{lab_marker=\"retries-1\"}) == 3' | grep -q '\"3\"' &&"
                ' curl -s "$v/select/logsql/query" --data-urlencode'
                " 'query=lab.marker:\"retries-1\" event.name:api_error | stats count() n' | grep -q '\"3\"'"
                " && exit 0; sleep 0.5; done; exit 1"
            ),
        ),
        shell=True,
    ),
    Step(
        "module-3-retries-count",
        (
            (
                'curl -s "$(labctl url victorialogs.http)/select/logsql/query"'
                ' \\\n  --data-urlencode \'query=lab.marker:"retries-1" event.name:api_error\n'
                "    | stats by (status_code) count() n'"
            ),
        ),
        shell=True,
    ),
    Step(
        "module-3-retries-count",
        (
            (
                'curl -s "$(labctl url prometheus.web)/api/v1/query"'
                " \\\n  --data-urlencode 'query=sum by (status_code)\n"
                '    (claude_code_api_error_events_total{lab_marker="retries-1"})\' \\\n'
                "  | python -m json.tool"
            ),
        ),
        shell=True,
    ),
    Step(
        "module-3-traces",
        ("emit", "--from-lab", "--scenario", "slow-tool"),
        run_extra=("--duration", "8", "--seed", "7"),
        sample="an 8 s run (yours: 30 s); span ids and times vary",
    ),
    Step(
        None,
        (
            (
                "j=$(labctl url jaeger.query); for _ in $(seq 80); do"
                ' curl -s "$j/api/services/claude-code/operations"'
                " | grep -q claude_code.tool.execution && exit 0; sleep 0.5; done; exit 1"
            ),
        ),
        shell=True,
    ),
    Step(
        "module-3-traces",
        (
            'curl -s "$(labctl url jaeger.query)/api/services/claude-code/operations" \\\n  | python -m json.tool',
        ),
        shell=True,
    ),
    Step(
        "module-3-traces",
        (
            (
                'curl -sG "$(labctl url jaeger.query)/api/traces" \\\n'
                "  --data-urlencode service=claude-code --data-urlencode limit=1 \\\n  | python -m json.tool | grep -E '\"(operationName|duration)\"'"
            ),
        ),
        shell=True,
    ),
    Step(
        "module-3-emit",
        ("emit", "--from-lab", "--sessions", "3", "--duration", "30", "--marker", "m3-exercise"),
        run_extra=("--duration", "2", "--seed", "7"),
        sample="a 2 s run (yours runs 30 s with a random seed: more actions, exports and items)",
    ),
    Step("module-3-check", ("check", "--layer", "3")),
    Step(
        "module-3-rules",
        (
            """curl -s $(labctl url prometheus.web)/api/v1/rules \\\n  | python -m json.tool | grep '"name"'""",
        ),
        shell=True,
    ),
    Step(
        "module-3-query",
        (
            (
                'curl -s "$(labctl url prometheus.web)/api/v1/label/__name__/values" \\\n'
                "  | python -m json.tool | grep claude_code"
            ),
        ),
        shell=True,
    ),
    Step(
        "module-3-query",
        (
            (
                "curl -s --get $(labctl url prometheus.web)/api/v1/query \\\n"
                # A newline inside the quoted query is PromQL whitespace: it keeps the line narrow.
                "  --data-urlencode 'query=sum by (type)\n"
                '    (claude_code_token_usage_tokens_total{lab_marker="m3-exercise"})\' \\\n'
                "  | python -m json.tool"
            ),
        ),
        shell=True,
        sample="the token sums of a 2 s run",
    ),
    Step("module-3-sessions-sums", ("proxy", "sessions"), sample="sessions, tokens and costs vary"),
    Step(
        "module-3-sessions-sums",
        (
            (
                "curl -s --get $(labctl url prometheus.web)/api/v1/query \\\n"
                "  --data-urlencode 'query=sum by (session_id, type)\n"
                '    (claude_code_token_usage_tokens_total{lab_marker="m3-exercise"})\' \\\n'
                "  | python -m json.tool"
            ),
        ),
        shell=True,
    ),
    Step("module-3-break-storage", ("break", "storage-down")),
    Step("module-3-break-storage", ("check", "--layer", "3"), exit_codes=(13,)),
    Step("module-3-heal-storage", ("heal", "storage-down")),
    Step("module-3-heal-storage", ("check", "--layer", "3")),
    Step("module-3-break-scrape", ("break", "network", "--hop", "collector-prometheus")),
    Step("module-3-break-scrape", ("check", "--layer", "3"), exit_codes=(13,)),
    Step("module-3-heal-scrape", ("heal", "network")),
    Step("module-3-break-latency", ("break", "latency", "--hop", "collector-prometheus", "--ms", "2500")),
    Step("module-3-break-latency", ("check", "--layer", "3"), exit_codes=(13,)),
    Step("module-3-heal-latency", ("heal", "latency")),
    Step(
        "module-3-blind",
        ("break", "--random", "--pool", "network,latency,storage-down,collector-crash", "--seed", "31"),
    ),
    Step(None, ("heal",)),
    Step(
        "module-3-backup",
        ("emit", "--from-lab", "--sessions", "2", "--duration", "20", "--marker", "before-backup"),
        run_extra=("--duration", "2", "--seed", "7"),
        sample="a 2 s run (yours: 20 s); ids, sums and times vary",
    ),
    # In place of the guide's `sleep 10`: until the stored sum holds still across a scrape (5 s).
    Step(
        None,
        (
            (
                'p=$(labctl url prometheus.web); q() { curl -s "$p/api/v1/query" --data-urlencode'
                " 'query=sum(claude_code_token_usage_tokens_total{lab_marker=\"before-backup\"})'"
                " | grep -o '\"[0-9.]*\"]'; }; last=;"
                ' for _ in $(seq 12); do n=$(q); [ -n "$n" ] && [ "$n" = "$last" ] && exit 0; last=$n;'
                " sleep 5.5; done; exit 1"
            ),
        ),
        shell=True,
    ),
    Step(
        "module-3-backup",
        (
            (
                "curl -s $(labctl url prometheus.web)/api/v1/query"
                " \\\n  --data-urlencode 'query=sum by (session_id)\n"
                '    (claude_code_token_usage_tokens_total{lab_marker="before-backup"})\' \\\n'
                "  | python -m json.tool"
            ),
        ),
        shell=True,
    ),
    Step("module-3-backup", ("backup",)),
    Step("module-3-restore", ("down", "--volumes"), sample="the backup's name is the time it was made"),
    Step(
        "module-3-restore",
        ('labctl restore "$(ls -d ~/.local/state/labctl/backups/default-* | tail -1)"',),
        shell=True,
    ),
    Step(
        "module-3-restore",
        (
            (
                "curl -s $(labctl url prometheus.web)/api/v1/query"
                " \\\n  --data-urlencode 'query=sum by (session_id)\n"
                '    (claude_code_token_usage_tokens_total{lab_marker="before-backup"})\' \\\n'
                "  | python -m json.tool"
            ),
        ),
        shell=True,
    ),
    Step("module-4-up", ("up", "module-4")),
    Step("module-4-up", ("status",)),
    Step("module-4-check", ("check", "--layer", "4")),
    # The final exercise's diagnose, reveal and check, graded against a hidden fault made for the guide's
    # example: a slow scrape hop (500 ms, under the scrape timeout: the target stays up, as the example's
    # evidence says), here where no earlier fault's alert is still firing to change the check's verdict.
    Step(None, ("break", "--hidden", "latency", "--hop", "collector-prometheus", "--ms", "500")),
    Step(
        "module-4-diagnose",
        (
            "diagnose",
            *("--layer", "3", "--hop", "collector-prometheus", "--cause", "hop-slow"),
            *("--evidence", "scrape_duration_seconds near the timeout, target up"),
            *("--fix", "remove the delay on the hop"),
        ),
        sample="graded against a fault made for it, not seed 41's",
    ),
    Step("module-4-diagnose", ("reveal",)),
    Step("module-4-diagnose", ("check",)),
    Step(
        "module-4-emit",
        ("emit", "--from-lab", "--sessions", "5", "--duration", "60", "--marker", "m4-exercise"),
        run_extra=("--duration", "2", "--seed", "7"),
        sample="a 2 s run (yours runs 60 s with a random seed: more actions, exports and items)",
    ),
    Step("module-4-alert-fires", ("url", "notify-receiver")),
    Step("module-4-alert-fires", ("break", "network", "--hop", "collector-prometheus", "--mode", "refuse")),
    Step(
        "module-4-silence",
        (
            (
                "~/.cache/labctl/bin/amtool \\\n"
                '  --alertmanager.url="$(labctl url alertmanager.web)" silence add \\\n'
                "  alertname=LabScrapeTargetDown --comment=exercise --duration=10m"
            ),
        ),
        shell=True,
        sample="the silence id is random",
    ),
    Step("module-4-silence", ("heal",)),
    Step("module-4-notify-cut", ("break", "network", "--hop", "alertmanager-receiver")),
    Step("module-4-notify-cut", ("check", "--layer", "4"), exit_codes=(14,)),
    Step("module-4-notify-cut", ("heal",)),
    Step("module-4-break-storage", ("break", "storage-down")),
    Step("module-4-break-storage", ("check",), exit_codes=(13,)),
    Step("module-4-heal-storage", ("heal", "storage-down")),
    Step("module-4-break-collector", ("break", "collector-crash")),
    Step("module-4-break-collector", ("check",), exit_codes=(12,)),
    Step("module-4-heal-collector", ("heal", "collector-crash")),
    Step("module-4-heal-collector", ("check",)),
    Step("module-4-blind", ("break", "--random", "--seed", "41")),
    # Seed 41's diagnosis and reveal are not shown (they would give the exercise's answer away).
    Step(None, ("heal",)),
    # Last: the retry storm fires an alert no later step should see.
    Step(
        "module-4-storm",
        ("emit", "--from-lab", "--sessions", "3", "--rate", "20", "--error-rate", "0.5", "--duration", "150"),
        run_extra=("--duration", "2", "--seed", "7"),
        sample="a 2 s run (yours runs 150 s with a random seed: more actions, errors, exports and items)",
    ),
)

# Module 1's real Claude Code: a part of its own, as its test runs only where the client is installed
# (tests/run-all.sh installs it; `labctl install claude-code` here is then a no-op).
CLAUDE_CODE: tuple[Step, ...] = (
    Step(None, ("up", "module-1"), run_extra=("--port-offset", "{offset}")),
    Step("module-1-claude", ("install", "claude-code")),
    Step("module-1-claude", ("claude", "--list")),
    Step("module-1-claude", ("claude", "--scenario", "hello-write")),
)

PARTS: dict[str, tuple[Step, ...]] = {
    "modules-1-2": MODULES_1_2,
    "modules-3-4": MODULES_3_4,
    "claude-code": CLAUDE_CODE,
}
SCENARIO: tuple[Step, ...] = tuple(step for steps in PARTS.values() for step in steps)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _default_ports() -> list[int]:
    from labctl.model import load_model

    return [p.host for svc in load_model(REPO).services.values() for p in svc.ports.values()]


def pick_offset() -> int:
    """An offset under 910 (so every port keeps its number of digits) where every shifted port is free."""
    ports = _default_ports()
    for offset in range(520, 910, 13):
        if all(_port_free(p + offset) for p in ports):
            return offset
    raise RuntimeError("no free port offset between 520 and 910 for the docs lab")


def _state_dir(base: Path) -> Path:
    """The run's state dir, as long as the default one and in a folder as long as its folder (backups
    go there), so text wrapped around either path keeps its layout when the path is replaced."""
    folder, name = DEFAULT_STATE.rsplit("/", 1)
    pad = len(folder) - len(str(base)) - 1
    if pad >= 1:
        return base / ("f" * pad) / name
    pad = len(DEFAULT_STATE) - len(str(base)) - 1
    return base / ("s" * max(pad, 1))


# Files the exercises tell the student to make, made here the same way, in the run's own directory.
BROKEN_COPY = "/tmp/broken.json"


def _make_files(base: Path) -> dict[str, Path]:
    example = (REPO / "lab" / "modules" / "module-1" / "token-usage.json").read_text(encoding="utf-8")
    broken = base / "broken.json"
    broken.write_text(example.replace('"input"', '"prompt"'), encoding="utf-8")  # the guide's sed edit
    return {BROKEN_COPY: broken}


# What a lab needs of the repository (labctl finds its lab files beside its own package).
COPIED = ("labctl", "lab", "collector-configs", "dashboards", "compose", "pyproject.toml")


def copy_repo(dest: Path) -> Path:
    """A private copy of the lab's tree, for a part whose steps edit the lab's files as a student does:
    the checkout other tests read stays as it is."""
    dest.mkdir(parents=True)
    for name in COPIED:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(REPO / name, dest / name)
    return dest


class Runner:
    def __init__(
        self, state_dir: Path, offset: int, files: dict[str, Path] | None = None, root: Path = REPO
    ) -> None:
        self.state_dir = state_dir
        self.offset = offset
        self.files = files or {}
        self.root = root  # the lab's tree: this checkout, or a private copy of it
        self.running: list[tuple[Step, subprocess.Popen[str]]] = []  # background steps
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("LABCTL_STATE_DIR", "LABCTL_INSTANCE", "LABCTL_RUNTIME", "OTEL_"))
        }
        self.env.update(
            {
                "LABCTL_STATE_DIR": str(state_dir),
                "LABCTL_RUNTIME": "native",
                "COLUMNS": str(WIDTH),
                "NO_COLOR": "1",
                "TERM": "dumb",
                "PYTHONUNBUFFERED": "1",
                # The exercises run outside the repository: labctl is still this checkout's.
                "PYTHONPATH": os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH")) if p),
            }
        )
        self.shifted = {p + offset: p for p in _default_ports()}
        # Where a student runs `labctl exercise start/check` (their files land there).
        self.workdir = state_dir.parent / "exercises"

    def run(self, step: Step) -> str:
        if step.edit is not None:
            step.edit(self.root)
            return ""
        command, cwd = self._command(step)
        if step.background:
            self.running.append(
                (
                    step,
                    subprocess.Popen(
                        command,
                        cwd=cwd,
                        env=self.env,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT,
                        text=True,
                    ),
                )
            )
            return ""
        try:
            # One stream, as a terminal shows it: a warning or an error stands where it was printed, not
            # after everything the command wrote to stdout (PYTHONUNBUFFERED keeps the two in order).
            proc = subprocess.run(
                command,
                cwd=cwd,
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=240,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"`{step.shown}` did not finish within 240 s") from None
        return self._outcome(step, proc.returncode, proc.stdout)

    def join(self) -> list[tuple[Step, str]]:
        """Each background step's transcript, once it has ended."""
        done = []
        for step, proc in self.running:
            try:
                out, _ = proc.communicate(timeout=240)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                raise RuntimeError(f"`{step.shown}` did not finish within 240 s") from None
            done.append((step, self._outcome(step, proc.returncode, out)))
        self.running = []
        return done

    def _outcome(self, step: Step, code: int, out: str) -> str:
        out = out.rstrip()
        if code not in step.exit_codes:
            raise RuntimeError(
                f"`{step.shown}` exited {code}, the exercise expects {step.exit_codes}:\n{out}"
            )
        return self.tidy(out)

    def _command(self, step: Step) -> tuple[list[str], Path]:
        extra = tuple(a.replace("{offset}", str(self.offset)) for a in step.run_extra)
        args = tuple(str(self.files.get(a, a)) for a in step.args)
        cwd = self.root
        if args[:1] == ("exercise",) or step.in_workdir:
            self.workdir.mkdir(parents=True, exist_ok=True)
            cwd = self.workdir
        if step.shell:
            # Paths as the guide writes them (the default state dir and its folder) are this run's.
            line = args[0].replace(DEFAULT_STATE, str(self.state_dir))
            line = line.replace(DEFAULT_STATE.rsplit("/", 1)[0], str(self.state_dir.parent))
            line = " ".join((line, *map(shlex.quote, extra)))  # a shortened run: options added at the end
            command = ["bash", "-c", f'labctl() {{ {shlex.quote(sys.executable)} -m labctl "$@"; }}; {line}']
        else:
            command = [sys.executable, "-m", "labctl", *args, *extra]
        return command, cwd

    def settle(self, step: Step) -> None:
        """After `up` of a stage with Prometheus: wait until every target has been scraped once.

        A student reads the status before running the check; without this pause the check could see a
        target whose health is still "unknown" (not yet scraped), which is not what the guide shows.
        """
        if step.args[:1] != ("up",) or step.args[1] not in ("module-3", "module-4"):
            return
        import json
        import time

        import requests

        port = json.loads((self.state_dir / "lab.json").read_text())["ports"]["prometheus"]["web"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                targets = requests.get(f"http://127.0.0.1:{port}/api/v1/targets", timeout=2).json()
                active = targets["data"]["activeTargets"]
                if active and all(t["health"] != "unknown" for t in active):
                    return
            except (requests.RequestException, ValueError, KeyError):
                pass
            time.sleep(0.5)
        raise RuntimeError("Prometheus did not scrape every target within 60 s")

    def tidy(self, text: str) -> str:
        """Write what a student on default ports and the default state dir would see."""
        for shown, real in self.files.items():
            text = text.replace(str(real), shown)
        text = text.replace(str(self.state_dir), DEFAULT_STATE)
        # Beside the state dir: backups/ (`labctl backup`'s default).
        text = text.replace(str(self.state_dir.parent), DEFAULT_STATE.rsplit("/", 1)[0])
        # `labctl matrix run` reports into a new temporary folder.
        text = text.replace(str(Path(tempfile.gettempdir()) / "labctl-matrix-"), "/tmp/labctl-matrix-")
        text = (
            text.replace(str(self.root) + "/", "").replace(str(REPO) + "/", "").replace(str(Path.home()), "~")
        )  # paths as a student reads them
        text = re.sub(
            r"(?<!\d)(\d{4,5})(?!\d)", lambda m: str(self.shifted.get(int(m.group(1)), m.group(1))), text
        )
        text = text.replace(f"{sys.executable} -m labctl", "labctl").replace("python -m labctl", "labctl")
        return "\n".join(line.rstrip() for line in text.splitlines())

    def down(self) -> None:
        for _, proc in self.running:  # a background step left by a failing part
            proc.kill()
            proc.communicate()
        self.running = []
        subprocess.run(
            [sys.executable, "-m", "labctl", "down", "--volumes"],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            timeout=120,
            check=False,
        )


@contextlib.contextmanager
def _port_choice() -> Iterator[None]:
    """Held from picking a port offset until the part's lab listens on it: two parts started together
    (xdist workers, the generator's threads) would otherwise both find the same offset free."""
    with open(Path(tempfile.gettempdir()) / "labctl-docs-ports.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def run_part(
    part: str, partial: dict[str, str] | None = None, times: list[tuple[str, str, float]] | None = None
) -> dict[str, str]:
    """Every section's transcript of one part, from one real run; its lab is always torn down.

    With `partial` (a dict), sections finished before a failing step are put there before the error is
    raised, so the generator can still refresh them. With `times`, each step's seconds are added to it.
    """
    base = Path(tempfile.mkdtemp(prefix="lab"))
    sections: dict[str, list[str]] = {}
    failing: str | None = None
    with contextlib.ExitStack() as choosing:
        choosing.enter_context(_port_choice())
        # A part that edits the lab's files runs its lab from a private copy of the repository.
        root = copy_repo(base / "repo") if any(s.edit for s in PARTS[part]) else REPO
        runner = Runner(_state_dir(base), pick_offset(), _make_files(base), root)
        try:
            for step in PARTS[part]:
                failing = step.section
                began = time.monotonic()
                if step.joins:
                    for ran, out in runner.join():
                        if not ran.section:
                            continue
                        note = _note(ran.sample) if ran.sample else ""
                        sections.setdefault(ran.section, []).append(f"{note}$ {ran.shown}\n{out}".rstrip())
                out = runner.run(step)
                runner.settle(step)
                if step.args[:1] == ("up",):
                    choosing.close()  # the lab holds its ports now
                if times is not None:
                    times.append((part, step.shown, time.monotonic() - began))
                if step.section and not step.background:
                    note = _note(step.sample) if step.sample else ""
                    sections.setdefault(step.section, []).append(f"{note}$ {step.shown}\n{out}".rstrip())
        except RuntimeError:
            if partial is not None:
                partial.update({n: "\n".join(p) for n, p in sections.items() if n != failing})
            raise
        finally:
            runner.down()
            shutil.rmtree(base, ignore_errors=True)
    return {name: "\n".join(parts) for name, parts in sections.items()}


def run_scenario(
    parts: Iterable[str] = tuple(PARTS),
    partial: dict[str, str] | None = None,
    times: list[tuple[str, str, float]] | None = None,
) -> dict[str, str]:
    """The sections of the given parts, the parts run side by side (each its own lab)."""
    parts = list(parts)
    outputs: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=len(parts)) as pool:
        futures = [pool.submit(run_part, name, partial, times) for name in parts]
        errors = []
        for future in futures:
            try:
                outputs.update(future.result())
            except RuntimeError as exc:
                errors.append(str(exc))
    if errors:
        raise RuntimeError("\n\n".join(errors))
    return outputs


def render(text: str, outputs: dict[str, str], keep_missing: bool = False) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group("name")
        if name not in outputs:
            if keep_missing:
                return m.group(0)
            raise KeyError(f"no step of the scenario writes output section {name!r}")
        return f"{m.group('open')}\n```console\n{outputs[name]}\n```\n{m.group('close')}"

    return OUTPUT_RE.sub(sub, text)


def sections_in_docs() -> dict[str, str]:
    """{section name: its body as the docs show it, fences included}."""
    found: dict[str, str] = {}
    for path in documents_with_outputs():
        for m in OUTPUT_RE.finditer(path.read_text(encoding="utf-8")):
            found[m.group("name")] = m.group("body")
    return found


def differences(part: str) -> list[str]:
    """Run one part for real; a diff for each of its sections whose key facts the docs do not show."""
    outputs = run_part(part)
    diffs = []
    for name, body in sections_in_docs().items():
        if name not in outputs:
            continue  # another part's
        shown = body.removeprefix("```console\n").removesuffix("```\n")
        if key_facts(shown) != key_facts(outputs[name]):
            lines = difflib.unified_diff(
                shown.splitlines(), outputs[name].splitlines(), f"docs:{name}", "real run", lineterm=""
            )
            diffs.append("\n".join(lines))
    return diffs


def assert_part_matches(part: str, binaries: tuple[str, ...] = ()) -> None:
    """A part's test: the binaries it needs are installed, then its sections match a real run."""
    import pytest

    from labctl.errors import LabError
    from labctl.install import resolve_binary

    for name in binaries:
        try:
            resolve_binary(name)
        except LabError as exc:  # names `labctl install <component>`
            pytest.fail(f"{name} is needed to re-run the exercises: {exc}")
    diffs = differences(part)
    assert not diffs, (
        "the docs show output the tool no longer prints; run "
        f"`python tests/docs/generate_outputs.py --part {part}`\n" + "\n\n".join(diffs)
    )


def documents_with_outputs() -> list[Path]:
    return [p for p in docsmd.doc_files() if "<!-- output:" in p.read_text(encoding="utf-8")]


def _norm_line(text: str) -> str:
    # Layers, exit codes and service counts are small whole numbers and must stay; times, ports,
    # counts of points and ids change from run to run.
    text = re.sub(r"\b(?=[0-9a-f]*\d)[0-9a-f]{6,}\b", "ID", text)
    text = re.sub(r"\bcheck-[0-9a-f]+", "check-ID", text)
    text = re.sub(r"\d+\.\d+|\d{3,}", "0", text)
    return " ".join(w for w in text.split() if "…" not in w)


def key_facts(text: str) -> list[str]:
    """What a guide promises a student will see, without the wording around it.

    The commands; for every table row (not its wrapped continuation lines) the short cells — a
    verdict and a check name, a service with its layer, state and health; and the opening words of
    each outcome line (✓ …, error: …, what to do: …, warning: …). Evidence and causes may be worded
    differently as the tool evolves; a verdict, a state, a failing layer or the playbook may not.
    """
    facts = []
    # A representative transcript (Step.sample) keeps its shape, not its counts: every number varies.
    representative = "# representative output:" in text
    for line in text.splitlines():
        stripped = re.sub(r"\d+", "0", line.strip()) if representative else line.strip()
        if stripped.startswith("$ "):
            facts.append(_norm_line(stripped))
        elif stripped.startswith("│"):
            cells = [c.strip() for c in stripped.strip("│").split("│")]
            if len(cells) < 2 or not (cells[0] or cells[1]):
                continue  # a wrapped continuation of the row above
            # Short plain cells: verdict, check name, service, layer, state, health (not URLs or evidence).
            short = [
                _norm_line(c) for c in cells if c and len(c.split()) <= 3 and not re.search(r"[…/:{}=+]", c)
            ]
            facts.append(" | ".join(short))
        else:
            for lead in ("✓", "✗", "error:", "what to do:", "warning:"):
                if stripped.startswith(lead):
                    facts.append(" ".join(_norm_line(stripped).split()[:5]))
    return sorted(facts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report docs whose key facts differ")
    parser.add_argument(
        "--partial",
        action="store_true",
        help="when a step fails, still rewrite the sections finished before it (then exit 1)",
    )
    parser.add_argument(
        "--part",
        action="append",
        choices=list(PARTS),
        help="run only this part of the scenario (repeatable; default: all, side by side)",
    )
    parser.add_argument("--times", action="store_true", help="print each step's seconds (stderr)")
    args = parser.parse_args(argv)
    failed: RuntimeError | None = None
    done: dict[str, str] = {}
    times: list[tuple[str, str, float]] = []
    try:
        outputs = run_scenario(args.part or tuple(PARTS), done if args.partial else None, times)
    except RuntimeError as exc:
        if not args.partial:
            raise
        failed, outputs = exc, done
    finally:
        if args.times:
            for part, command, seconds in times:
                print(f"{part}  {seconds:6.1f}s  {command.splitlines()[0][:90]}", file=sys.stderr)
            for part in dict.fromkeys(p for p, _, _ in times):
                total = sum(s for p, _, s in times if p == part)
                print(f"{part}  {total:6.1f}s in all", file=sys.stderr)
    stale = []
    partial_run = failed is not None or args.part is not None
    for path in documents_with_outputs():
        text = path.read_text(encoding="utf-8")
        if args.check:
            shown = {m.group("name"): m.group("body") for m in OUTPUT_RE.finditer(text)}
            if any(key_facts(body) != key_facts(outputs[n]) for n, body in shown.items() if n in outputs):
                stale.append(path.relative_to(REPO))
            continue
        new = render(text, outputs, keep_missing=partial_run)
        if new != text:
            stale.append(path.relative_to(REPO))
            path.write_text(new, encoding="utf-8")
    for rel in stale:
        print(("differs: " if args.check else "updated: ") + str(rel))
    if failed is not None:
        print(f"stopped early: {failed}", file=sys.stderr)
        return 1
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
