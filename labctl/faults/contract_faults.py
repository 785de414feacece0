"""Layer-1 faults: the contract the proxy checks against changes under the producer's feet.

Both write a variant of the lab's contract into the lab's state directory (`<state>/contracts/`,
never into the repository checkout) and switch the running proxy to it through its admin API
(`PUT /api/contract`; heal: `DELETE`), so nothing restarts and its counters and history stay. Natively
the proxy reads that file; the Docker proxy cannot see the state directory, so the file is copied into
its data volume (`/data`). A proxy restarted meanwhile is back on its configured contract already.
That is a real failure mode — a consumer tightens the contract and the producer's data starts to
violate it — and it is found with layer 1's own tools: the check's verdict, `/api/violations`,
`/api/contract`.

  contract     every metric now requires an attribute (`team.id`) that Claude Code does not send
  cardinality  the token and cost metrics allow a single series each: any real session exceeds it
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from labctl.errors import LabError
from labctl.faults.base import FaultContext
from labctl.faults.records import ContractVariant
from labctl.lazy import requests

REQUIRED_ATTRIBUTE = "team.id"
LIMITED_METRICS = ("claude_code.token.usage", "claude_code.cost.usage")


def _lab_contract(ctx: FaultContext) -> dict[str, Any]:
    from labctl.contract import default_contract_path

    return yaml.safe_load(default_contract_path().read_text(encoding="utf-8"))


def _variant(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    metrics = data.get("metrics") or {}
    if kind == "contract":
        for rule in metrics.values():
            rule.setdefault("attributes", {})[REQUIRED_ATTRIBUTE] = {
                "requirement": "required",
                "type": "string",
            }
    else:
        for name in LIMITED_METRICS:
            if name in metrics:
                metrics[name]["cardinality"] = {"*": 1}
    return data


def _apply(kind: str, ctx: FaultContext) -> ContractVariant:
    if "proxy" not in ctx.running or not ctx.runtime.is_running("proxy"):
        raise LabError(
            "the proxy is not running: nothing to break", "start the lab first: `labctl up module-1`"
        )
    # A neutral name: /api/contract shows this path, and a blind challenge must not read "fault" in it.
    folder = ctx.lab.dir / "contracts"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "claude-code.yaml"
    path.write_text(yaml.safe_dump(_variant(kind, _lab_contract(ctx)), sort_keys=False), encoding="utf-8")
    seen = str(path)
    if ctx.lab.runtime == "docker":
        seen = _copy_into_container(ctx, path, "/data/contracts-claude-code.yaml")
    _switch(ctx, "put", {"path": seen})
    return ContractVariant(contract=seen, file=str(path))


def _switch(ctx: FaultContext, method: str, body: dict[str, Any] | None = None) -> None:
    """PUT (switch to body's file) or DELETE (back to the configured contract) /api/contract."""
    url = ctx.lab.url("proxy", "admin") + "/api/contract"
    try:
        resp = requests.request(
            method,
            url,
            json=body,
            timeout=10,
            headers=ctx.lab.admin_headers(),
            params={"quiet": "1"} if ctx.quiet else None,  # a hidden fault: the proxy does not log it
        )
    except requests.RequestException as exc:
        raise LabError(
            f"cannot reach the proxy's admin API at {url}: {type(exc).__name__}",
            "is the proxy running? `labctl status`",
        ) from None
    if resp.status_code != 200:
        try:
            said = str(resp.json().get("error", resp.text[:200]))
        except ValueError:
            said = resp.text[:200]
        raise LabError(
            f"the proxy refused the contract change ({resp.status_code}): {said}", "see `labctl logs proxy`"
        )


def _copy_into_container(ctx: FaultContext, path: Path, target: str) -> str:
    """The proxy container sees its data volume, not our state directory: copy the variant there."""
    from labctl.faults.docker_net import copy_into

    copy_into(ctx, path, "proxy", target)
    return target


def apply_contract(ctx: FaultContext, opts: dict[str, Any]) -> ContractVariant:
    return _apply("contract", ctx)


def apply_cardinality(ctx: FaultContext, opts: dict[str, Any]) -> ContractVariant:
    return _apply("cardinality", ctx)


def verify(ctx: FaultContext, rec: ContractVariant) -> list[str]:
    """The proxy reports the variant as the contract in force (its own API, not our file)."""
    url = ctx.lab.url("proxy", "admin") + "/api/contract"
    try:
        info = requests.get(url, timeout=3, headers=ctx.lab.admin_headers()).json()
    except (requests.RequestException, ValueError) as exc:
        raise LabError(f"cannot read the proxy's contract at {url}: {exc}") from None
    if info.get("path") != rec.contract:
        raise LabError(f"the proxy still checks against {info.get('path')!r}, not the changed contract")
    return [f"proxy's contract in force: {rec.contract}", f"from {url}"]


def heal(ctx: FaultContext, rec: ContractVariant) -> None:
    if ctx.runtime.is_running("proxy"):  # stopped: its next start reads the configured contract
        _switch(ctx, "delete")
    Path(rec.file).unlink(missing_ok=True)
