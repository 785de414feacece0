"""Layer-1 faults: the contract the proxy checks against changes under the producer's feet.

Both write a variant of the lab's contract and point the proxy at it (`LAB_PROXY_CONTRACT`, applied by
restarting the proxy; acknowledged data waits in its spool). The variant goes under
lab/modules/module-1/faults/ (git-ignored) rather than the state directory, because the Docker runtime
mounts lab/ into the proxy's container: one place that both runtimes' proxies can read. That is
a real failure mode — a consumer tightens the contract and the producer's data starts to violate it —
and it is found with layer 1's own tools: the check's verdict, `/api/violations`, `/api/contract`.

  contract     every metric now requires an attribute (`team.id`) that Claude Code does not send
  cardinality  the token and cost metrics allow a single series each: any real session exceeds it
"""

from __future__ import annotations

import hashlib
from typing import Any

import requests
import yaml

from labctl.errors import LabError
from labctl.faults.base import FaultContext

REQUIRED_ATTRIBUTE = "team.id"
LIMITED_METRICS = ("claude_code.token.usage", "claude_code.cost.usage")


def _lab_contract(ctx: FaultContext) -> dict[str, Any]:
    from labctl.contract import default_contract_path

    return yaml.safe_load(default_contract_path().read_text(encoding="utf-8"))


def _variant(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    metrics = data.get("metrics") or {}
    if kind == "contract":
        for rule in metrics.values():
            rule.setdefault("attributes", {})[REQUIRED_ATTRIBUTE] = {"requirement": "required", "type": "string"}
    else:
        for name in LIMITED_METRICS:
            if name in metrics:
                metrics[name]["cardinality"] = {"*": 1}
    data["description"] = f"{data.get('description', '')} (changed by `labctl break {kind}`)".strip()
    return data


def _apply(kind: str, ctx: FaultContext) -> dict[str, Any]:
    from labctl.model import DOCKER_REPO

    if "proxy" not in ctx.running or not ctx.runtime.is_running("proxy"):
        raise LabError("the proxy is not running: nothing to break", "start the lab first: `labctl up module-1`")
    root = ctx.model.root
    # One file per lab (instance name + its state directory), so labs sharing a checkout never collide.
    lab_id = hashlib.sha1(str(ctx.lab.dir.resolve()).encode()).hexdigest()[:8]
    path = root / "lab" / "modules" / "module-1" / "faults" / f"{ctx.lab.instance}-{lab_id}-{kind}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(_variant(kind, _lab_contract(ctx)), sort_keys=False), encoding="utf-8")
    # The path as the proxy sees it: the file itself natively, the mounted repo inside a container.
    seen = f"{DOCKER_REPO}/{path.relative_to(root)}" if ctx.lab.runtime == "docker" else str(path)
    undo = ctx.add_overrides("proxy", env={"LAB_PROXY_CONTRACT": seen})
    return {"service": "proxy", "contract": seen, "file": str(path), "undo": undo}


def apply_contract(ctx: FaultContext, opts: dict[str, Any]) -> dict[str, Any]:
    return _apply("contract", ctx)


def apply_cardinality(ctx: FaultContext, opts: dict[str, Any]) -> dict[str, Any]:
    return _apply("cardinality", ctx)


def verify(ctx: FaultContext, rec: dict[str, Any]) -> list[str]:
    """The proxy reports the variant as the contract in force (its own API, not our file)."""
    url = ctx.lab.url("proxy", "admin") + "/api/contract"
    try:
        info = requests.get(url, timeout=3).json()
    except (requests.RequestException, ValueError) as exc:
        raise LabError(f"cannot read the proxy's contract at {url}: {exc}") from None
    if info.get("path") != rec["contract"]:
        raise LabError(f"the proxy still checks against {info.get('path')!r}, not the changed contract")
    return [f"proxy's contract in force: {rec['contract']}", f"from {url}"]


def heal(ctx: FaultContext, rec: dict[str, Any]) -> None:
    from pathlib import Path

    ctx.remove_overrides(rec["undo"])
    if rec.get("file"):
        Path(rec["file"]).unlink(missing_ok=True)
