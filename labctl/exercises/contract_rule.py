"""Module 1: the student's contract must refuse a token.usage point whose `type` is not a token type.

The starting contract is the lab's own with that rule taken out (the `type` attribute accepts any
string), so a typo in the sender goes through unnoticed. The verifier checks the student's contract
against the module's sample payload (must conform) and two mistyped copies of it (must be refused).
"""

from __future__ import annotations

from pathlib import Path

from labctl.errors import LabError
from labctl.exercises.registry import REPO, Finding

_RULE_LINE = "      type: {requirement: required, values: [input, output, cacheRead, cacheCreation]}"
_START_LINE = "      type: {requirement: required, type: string}"
_SAMPLE = REPO / "lab" / "modules" / "module-1" / "token-usage.json"


def starting_contract() -> str:
    text = (REPO / "lab" / "contracts" / "claude-code.yaml").read_text(encoding="utf-8")
    if text.count(_RULE_LINE) != 1:
        raise LabError(
            "the lab's contract no longer has the token.usage type rule this exercise removes",
            "update labctl/exercises/contract_rule.py to the contract's current line",
        )
    return text.replace(_RULE_LINE, _START_LINE)


def _violations(contract: object, payload: bytes) -> list[dict[str, str]]:
    from labctl.otlp.payload_io import read_payloads

    found: list[dict[str, str]] = []
    for signal, request in read_payloads(payload, str(_SAMPLE), "metrics"):
        found.extend(contract.evaluate(signal, request).violations())  # type: ignore[attr-defined]
    return found


def verify(path: Path) -> list[Finding]:
    from labctl.contract import load_contract

    try:
        contract = load_contract(path)
    except LabError as exc:
        return [Finding(False, f"the contract loads: {exc.message}", exc.hint or "")]
    findings = [Finding(True, "the contract loads")]
    sample = _SAMPLE.read_bytes()
    wrong = _violations(contract, sample)
    findings.append(
        Finding(
            not wrong,
            "the module's sample payload conforms"
            + (f": {wrong[0]['rule']} — {wrong[0]['message']}" if wrong else ""),
            "a correct sender must still pass: allow every type Claude Code really sends",
        )
    )
    for typo in ("prompt", "Input"):
        seen = _violations(contract, sample.replace(b'"input"', f'"{typo}"'.encode()))
        refused = any(v["rule"] == "attribute_value" and v["path"].endswith("[type]") for v in seen)
        findings.append(
            Finding(
                refused,
                f"a token.usage point with type {typo!r} is refused",
                "an attribute can list the only values it may take (see the `values` of other "
                "attributes in the file)",
            )
        )
    return findings
