"""Module 3: a recording rule that Prometheus loads and that records nothing the dashboards can use.

The starting rule has a name outside the `level:metric:operations` convention, a 5 s window at a 5 s
scrape interval (one sample, and rate() needs two, so it records nothing) and a sum() that drops the
model label. The verifier runs the real `promtool check rules`, then `promtool test rules` on ten
minutes of data with alerts that fire when the recorded series are missing, not one per model, or
different from the model answer (one model speeds up half way, so a window other than 5 m differs).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import yaml

from labctl.exercises.registry import Finding
from labctl.exercises.tools import run_tool

NAME = "model:claude_code_token_usage_tokens:rate5m"
MODEL = "sum by (model) (rate(claude_code_token_usage_tokens_total[5m]))"
_TOKENS = "claude_code_token_usage_tokens_total"
# Every 5 s for ten minutes. Session s1's input speeds up from 10 to 20 tokens/s at minute 7.
TEN_MINUTES: tuple[tuple[str, str], ...] = (
    (f'{_TOKENS}{{model="claude-opus-5-5",type="input",session_id="s1"}}', "0+50x84 4250+100x36"),
    (f'{_TOKENS}{{model="claude-opus-5-5",type="output",session_id="s1"}}', "0+5x120"),
    (f'{_TOKENS}{{model="claude-haiku-4-5",type="input",session_id="s2"}}', "0+10x120"),
)
MODELS = 2


def _judge(record: str) -> dict[str, Any]:
    recorded = f'{{__name__="{record}"}}'
    labelled = f'{{__name__="{record}",model!=""}}'
    return {
        "groups": [
            {
                "name": "labctl-judge",
                "rules": [
                    {"alert": "RecordsNothing", "expr": f"absent({recorded})"},
                    {
                        "alert": "NotOnePerModel",
                        "expr": f"count(count by (model) ({labelled})) != {MODELS} or count({recorded}) != {MODELS}",
                    },
                    {
                        "alert": "DiffersFromModelAnswer",
                        "expr": f"abs({recorded} - on (model) group_left () ({MODEL})) "
                        f"> on (model) group_left () (0.001 * {MODEL})",
                    },
                ],
            }
        ]
    }


def _records(rules: Any) -> list[dict[str, Any]]:
    groups = rules.get("groups") if isinstance(rules, dict) else None
    return [
        r
        for g in groups or []
        if isinstance(g, dict)
        for r in g.get("rules") or []
        if isinstance(r, dict) and "record" in r
    ]


def _group_names(rules: dict[str, Any]) -> list[str]:
    names = [str(g["name"]) for g in rules.get("groups") or [] if isinstance(g, dict) and "name" in g]
    return [n for n in dict.fromkeys(names) if n != "labctl-judge"]


def _fired(output: str) -> set[str]:
    return set(re.findall(r"alertname: (\w+),", output))


def verify(path: Path) -> list[Finding]:
    try:
        rules = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        return [Finding(False, f"{path.name} is YAML: {exc}", "fix the YAML where the message points")]
    checked, _ = run_tool(
        "promtool",
        ["check", "rules", path.name],
        "promtool check rules accepts it",
        cwd=path.resolve().parent,
    )
    records = _records(rules)
    if not checked.ok or not records:
        hint = "a rule file holds groups, each with rules; a recording rule has record: and expr:"
        return [checked, *([] if records else [Finding(False, "the file has a recording rule", hint)])]
    record = str(records[0]["record"])
    findings = [
        checked,
        Finding(
            record == NAME,
            f"it records {NAME}",
            "level:metric:operations — the labels kept, the metric without _total, what was done",
        ),
    ]
    with tempfile.TemporaryDirectory(prefix="labctl-recording-") as tmp:
        work = Path(tmp)
        (work / "student.yml").write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
        (work / "judge.yml").write_text(yaml.safe_dump(_judge(record)), encoding="utf-8")
        test = {
            "rule_files": ["student.yml", "judge.yml"],
            "evaluation_interval": "5s",
            # promtool orders unlisted groups at random; the judge must read this step's recording,
            # not the last one (the rate moves ~1 % per step after minute 7)
            "group_eval_order": [*_group_names(rules), "labctl-judge"],
            "tests": [
                {
                    "interval": "5s",
                    "input_series": [{"series": s, "values": v} for s, v in TEN_MINUTES],
                    "alert_rule_test": [
                        {"eval_time": "10m", "alertname": a, "exp_alerts": []}
                        for a in ("RecordsNothing", "NotOnePerModel", "DiffersFromModelAnswer")
                    ],
                }
            ],
        }
        (work / "test.yml").write_text(yaml.safe_dump(test), encoding="utf-8")
        ran, output = run_tool("promtool", ["test", "rules", "test.yml"], "promtool test rules", cwd=work)
    if "is not installed" in ran.what:
        return [*findings, ran]
    fired = _fired(output)
    if not ran.ok and not fired:
        return [*findings, ran]  # promtool refused the test itself: its own words
    findings.append(
        Finding(
            "RecordsNothing" not in fired,
            "it records data at a 5 s scrape interval",
            "rate() needs two samples in its window; a window of 5 s holds one",
        )
    )
    if "RecordsNothing" in fired:
        return findings  # nothing recorded: its labels and values cannot be judged yet
    findings.append(
        Finding(
            "NotOnePerModel" not in fired,
            "it records one series per model",
            "sum by (model) keeps the label the panel draws one line for; sum() alone drops it",
        )
    )
    if "NotOnePerModel" not in fired:
        findings.append(
            Finding(
                "DiffersFromModelAnswer" not in fired and ran.ok,
                "its values are tokens per second over the last 5 minutes",
                "rate() of the counter over [5m], then sum: a shorter window sees only the last minutes",
            )
        )
    return findings
