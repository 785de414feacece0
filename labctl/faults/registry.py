"""The fault table: adding a fault is adding one entry here."""

from __future__ import annotations

from labctl.faults import auth, collector_faults, contract_faults, endpoint, network, process_faults
from labctl.faults.base import Fault

FAULTS: dict[str, Fault] = {
    f.name: f
    for f in [
        Fault(
            name="network",
            summary="partition a hop: connections hang and time out (or --mode refuse)",
            layer=2, needs=("proxy", "collector"), options=network.NETWORK_OPTIONS,
            apply=network.apply_network, verify=network.verify, heal=network.heal,
            alert=lambda o: {"proxy-collector": "ProxyUpstreamFailing",
                             "collector-prometheus": "LabScrapeTargetDown"}.get(str(o.get("hop"))),
            playbook="upstream-unreachable", touches=network.touches,
        ),
        Fault(
            name="latency",
            summary="add delay to a hop (default 500 ms each way on proxy→collector)",
            layer=2, needs=("proxy", "collector"), options=network.LATENCY_OPTIONS,
            apply=network.apply_latency, verify=network.verify, heal=network.heal,
            playbook="upstream-slow", touches=network.touches,
        ),
        Fault(
            name="endpoint",
            summary="the proxy's upstream points at a bad endpoint (host, port, protocol, URL)",
            layer=2, needs=("proxy", "collector"), options=endpoint.OPTIONS,
            apply=endpoint.apply, verify=endpoint.verify, heal=endpoint.heal,
            alert=lambda o: "LabScrapeTargetDown" if o.get("kind") == "invalid-url" else "ProxyUpstreamFailing",
            playbook="upstream-unreachable", touches=lambda opts: {"hop:proxy-collector"},
        ),
        Fault(
            name="auth",
            summary="the Collector requires a bearer token; the proxy's is wrong or missing",
            layer=2, needs=("proxy", "collector"), options=auth.OPTIONS,
            apply=auth.apply, verify=auth.verify, heal=auth.heal,
            alert=lambda o: "ProxyUpstreamFailing", playbook="upstream-auth",
            touches=lambda opts: {"hop:proxy-collector", "collector-config"},
        ),
        Fault(
            name="collector-crash",
            summary="the Collector process dies (SIGKILL)",
            layer=2, needs=("collector",), options=process_faults.CRASH_OPTIONS,
            apply=process_faults.apply_crash, verify=process_faults.verify_down, heal=process_faults.heal_start,
            alert=lambda o: "LabScrapeTargetDown", playbook="collector-down",
            touches=lambda opts: {"collector-process"},
        ),
        Fault(
            name="memory-pressure",
            summary="the Collector's memory_limiter is far below its own heap: it refuses every export",
            layer=2, needs=("proxy", "collector"),
            apply=collector_faults.apply_memory, verify=collector_faults.verify_memory,
            heal=collector_faults.heal_overlay, alert=lambda o: "CollectorReceiverRefusing",
            playbook="collector-refusing", touches=lambda opts: {"collector-config"},
        ),
        Fault(
            name="storage-down",
            summary="Prometheus is stopped: nothing is stored or queried",
            layer=3, needs=("prometheus",),
            apply=process_faults.apply_storage_down, verify=process_faults.verify_down,
            heal=process_faults.heal_start, playbook="prometheus-down",
            touches=lambda opts: {"prometheus-process"},
        ),
        Fault(
            name="contract",
            summary="the proxy's contract now requires an attribute the application does not send",
            layer=1, needs=("proxy",), apply=contract_faults.apply_contract, verify=contract_faults.verify,
            heal=contract_faults.heal, playbook="contract-violation", touches=lambda opts: {"proxy-contract"},
        ),
        Fault(
            name="cardinality",
            summary="the proxy's contract allows one series per token/cost metric: real sessions exceed it",
            layer=1, needs=("proxy",), apply=contract_faults.apply_cardinality, verify=contract_faults.verify,
            heal=contract_faults.heal, playbook="contract-violation", touches=lambda opts: {"proxy-contract"},
        ),
    ]
}
