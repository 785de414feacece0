"""Module 3: five PromQL questions, each answered by the student's query and checked with promtool.

promtool (the real PromQL engine) loads a fixed hour of class data and evaluates, at the end of the
hour, an alert that fires when the student's answer and the model answer differ: a series only one of
them has, or a value more than 1 % apart. No alert means the same answer, whatever the query's shape.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import yaml

from labctl.exercises.registry import REPO, Finding
from labctl.exercises.tools import run_tool

SOLUTIONS = REPO / "lab" / "docs" / "answer-key" / "promql.yaml"

_TOKENS = "claude_code_token_usage_tokens_total"
_COST = "claude_code_cost_usage_USD_total"
_OPUS, _HAIKU = "claude-opus-5-5", "claude-haiku-4-5"
# One sample a minute for an hour. s3's Collector restarted at minute 31 (a reset); s4 was idle.
CLASS_HOUR: tuple[tuple[str, str], ...] = (
    (f'{_TOKENS}{{model="{_OPUS}",type="input",session_id="s1"}}', "0+600x60"),
    (f'{_TOKENS}{{model="{_OPUS}",type="output",session_id="s1"}}', "0+120x60"),
    (f'{_TOKENS}{{model="{_OPUS}",type="cacheRead",session_id="s1"}}', "0+1800x60"),
    (f'{_TOKENS}{{model="{_HAIKU}",type="input",session_id="s2"}}', "0+60x60"),
    (f'{_TOKENS}{{model="{_HAIKU}",type="output",session_id="s2"}}', "0+30x60"),
    (f'{_TOKENS}{{model="{_OPUS}",type="input",session_id="s3"}}', "0+300x30 0+300x29"),
    (f'{_TOKENS}{{model="{_OPUS}",type="cacheRead",session_id="s3"}}', "0+900x30 0+900x29"),
    (f'{_TOKENS}{{model="{_HAIKU}",type="input",session_id="s4"}}', "500x60"),
    (f'{_COST}{{model="{_OPUS}",session_id="s1"}}', "0+0.05x60"),
    (f'{_COST}{{model="{_HAIKU}",session_id="s2"}}', "0+0.001x60"),
    (f'{_COST}{{model="{_OPUS}",session_id="s3"}}', "0+0.03x30 0+0.03x29"),
    (f'{_COST}{{model="{_HAIKU}",session_id="s4"}}', "0.2x60"),
)

HINTS = {
    "token-rate": "rate() of the counter over [5m], then sum by the label you want to keep",
    "tokens-per-type": "a counter went back to 0 in the hour: increase() over [1h] counts across it",
    "cost": "the same idea as tokens-per-type, summed into one number",
    "sessions": "an idle session still has series: count the sessions whose tokens increased",
    "cache-share": "sum each side into one number before dividing, so their labels match",
}


def _mismatch(student: str, model: str) -> str:
    s, m = f"({student})", f"({model})"
    return f"({s} unless {m}) or ({m} unless {s}) or (abs({s} - {m}) > 0.01 * abs({m}) + 1e-9)"


def _series() -> list[dict[str, str]]:
    return [{"series": name, "values": values} for name, values in CLASS_HOUR]


def _got(output: str) -> list[str]:
    """What promtool printed as each expression's result (`got: …`), in order, numbers made short."""
    short = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?E[+-]\d+")
    return [
        short.sub(lambda n: f"{float(n.group(0)):.6g}", m.group(1).strip())
        for m in re.finditer(r"got: ?(.*)", output)
    ]


def parse_error(student: str, work: Path) -> str | None:
    """promtool's own words when the student's query does not parse (None when it does)."""
    rules = {"groups": [{"name": "answer", "rules": [{"record": "answer", "expr": student}]}]}
    (work / "answer.yml").write_text(yaml.safe_dump(rules), encoding="utf-8")
    finding, output = run_tool("promtool", ["check", "rules", "answer.yml"], "parse", cwd=work)
    if finding.ok or "is not installed" in finding.what:
        return None
    lines = [ln.strip() for ln in output.splitlines() if "error" in ln.lower()]
    return (lines[-1] if lines else output[-300:]).split("could not parse expression: ")[-1]


def check_query(task: str, student: str, model: str, work: Path) -> Finding:
    error = parse_error(student, work)
    if error:
        return Finding(False, f"{task}: promtool cannot parse it: {error}", HINTS.get(task, ""))
    rules = {"groups": [{"name": task, "rules": [{"alert": "Mismatch", "expr": _mismatch(student, model)}]}]}
    (work / "rules.yml").write_text(yaml.safe_dump(rules), encoding="utf-8")
    test: dict[str, Any] = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": _series(),
                "alert_rule_test": [{"eval_time": "60m", "alertname": "Mismatch", "exp_alerts": []}],
            }
        ],
    }
    (work / "test.yml").write_text(yaml.safe_dump(test), encoding="utf-8")
    finding, output = run_tool("promtool", ["test", "rules", "test.yml"], task, cwd=work)
    if finding.ok or "is not installed" in finding.what:
        return finding
    if "Mismatch" not in output or "got:[" not in output.replace(" ", ""):
        # promtool refused the combination (e.g. a range vector or a scalar answer): its own words.
        error = next((ln.strip() for ln in output.splitlines() if "err" in ln.lower()), output[-300:])
        if "only scalar and instant vector" in error:
            error = "it answers with a range vector ([…]); wrap it in a function such as increase()"
        return Finding(False, f"{task}: {error.split('parse error: ')[-1]}", HINTS.get(task, ""))
    # Same data, both queries shown as promtool evaluates them: the student compares the answers.
    test["tests"][0].pop("alert_rule_test")
    test["tests"][0]["promql_expr_test"] = [
        {"expr": expr, "eval_time": "60m", "exp_samples": []} for expr in (student, model)
    ]
    (work / "test.yml").write_text(yaml.safe_dump(test), encoding="utf-8")
    _, shown = run_tool("promtool", ["test", "rules", "test.yml"], task, cwd=work)
    got = [*_got(shown), "?", "?"]
    return Finding(False, f"{task}: your answer {got[0]}; expected {got[1]}", HINTS.get(task, ""))


def verify(path: Path) -> list[Finding]:
    try:
        answers = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        return [Finding(False, f"{path.name} is YAML: {exc}", "fix the YAML where the message points")]
    solutions = yaml.safe_load(SOLUTIONS.read_text(encoding="utf-8"))
    if not isinstance(answers, dict):
        return [
            Finding(
                False, f"{path.name} maps each task to a query", "start again: labctl exercise start promql"
            )
        ]
    findings = []
    with tempfile.TemporaryDirectory(prefix="labctl-promql-") as tmp:
        for task, model in solutions.items():
            student = str(answers.get(task) or "").strip()
            if not student:
                findings.append(Finding(False, f"{task}: no query yet", HINTS[task]))
                continue
            findings.append(check_query(task, student, " ".join(str(model).split()), Path(tmp)))
    return findings
