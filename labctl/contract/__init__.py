"""Layer 1's contract: what Claude Code's metrics and events must look like, and the checks that prove it.

contract = load_contract(path)             # LabError with file:line on a broken file
ev = contract.evaluate("metrics", request)  # request: an OTLP Export*ServiceRequest protobuf
ev.records, ev.rejected, ev.filtered_request(), ev.message
ev.items                                    # typed: Item(meta=ItemMeta(...), attributes, value, series, ...)
"""

from __future__ import annotations

from pathlib import Path

from labctl.contract.evaluate import Contract
from labctl.contract.loader import parse_contract_text, read_contract_file
from labctl.contract.model import Attribute, ContractSpec, EventRule, MetricRule
from labctl.contract.results import Evaluation, Item, ItemMeta, SeriesId

__all__ = [
    "Attribute",
    "Contract",
    "ContractSpec",
    "Evaluation",
    "EventRule",
    "Item",
    "ItemMeta",
    "MetricRule",
    "SeriesId",
    "contract_from_text",
    "default_contract_path",
    "load_contract",
]


def load_contract(path: str | Path) -> Contract:
    """Load a contract file (labctl, seed or Weaver dialect; a Weaver registry directory too)."""
    p = Path(path)
    if p.is_dir():
        from labctl.contract.weaver import read_weaver_dir

        return Contract(read_weaver_dir(p), str(p))
    return Contract(read_contract_file(p), str(p))


def contract_from_text(text: str, source: str = "<contract>") -> Contract:
    return Contract(parse_contract_text(text, source), source)


def default_contract_path() -> Path:
    """The lab's Claude Code contract in this checkout (lab/contracts/claude-code.yaml)."""
    return Path(__file__).resolve().parents[2] / "lab" / "contracts" / "claude-code.yaml"
