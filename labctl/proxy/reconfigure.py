"""Which proxy.yaml settings a running proxy can take over live, and which need a restart.

`labctl reload proxy` (POST /api/reload, or SIGHUP) reads proxy.yaml again with the process's own
environment, validates it like a start would, and compares it with what runs:

- live: the contract (path and mode), the clients' bearer token, the Retry-After advice and the whole
  `upstream` section (endpoint, protocol, headers, timeout, retry, batch size) while an upstream is
  configured before and after — the forwarder switches in place, the spool and the counters stay;
- restart: what is bound or opened once at start — the listen addresses, data_dir, the gRPC message
  size limit (a gRPC server option), the memory queue and the spool, turning the upstream on or off
  (that creates or removes the spool), the contract file watcher, and the inspection sections
  (`inspect`, `log`, `redact`, `alerts`, `sessions`: the page's state is built from them).

A restart-only change is not applied: it is reported as pending until the proxy restarts.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from labctl.proxy.config import PASS_THROUGH, ProxyConfig

# Setting -> how to read it from a ProxyConfig. The names are proxy.yaml's own keys.
_LIVE: dict[str, Any] = {
    "contract.mode": lambda c: c.mode,
    "auth.bearer_token": lambda c: c.auth_token,
    "limits.retry_after": lambda c: c.retry_after,
}
_RESTART: dict[str, Any] = {
    "listen.otlp_grpc": lambda c: c.otlp_grpc,
    "listen.otlp_http": lambda c: c.otlp_http,
    "listen.admin": lambda c: c.admin,
    "data_dir": lambda c: c.data_dir,
    "auth.allowed_hosts": lambda c: c.allowed_hosts,
    "contract.reload": lambda c: c.contract_reload,
    "limits.max_request_bytes": lambda c: c.max_request_bytes,
    "queue.memory_bytes": lambda c: c.queue_memory_bytes,
    "spool.max_bytes": lambda c: c.spool_max_bytes,
    "spool.overflow": lambda c: c.spool_overflow,
    "spool.sync": lambda c: c.spool_sync,
    **{name: (lambda c, n=name: c.raw.get(n)) for name in PASS_THROUGH},
}
LIVE_SETTINGS = ("contract.path", *_LIVE, "upstream")
RESTART_SETTINGS = (*_RESTART, "contract.path (on or off)", "upstream (on or off)")


def changed(old: ProxyConfig, new: ProxyConfig) -> tuple[list[str], list[str]]:
    """(settings that change live, settings that need a restart) between two configs."""
    live = [name for name, get in _LIVE.items() if get(old) != get(new)]
    restart = [name for name, get in _RESTART.items() if get(old) != get(new)]
    # Another contract file is loaded live; starting or stopping to use one (the file watcher) needs a restart.
    if old.contract_path != new.contract_path:
        both = old.contract_path is not None and new.contract_path is not None
        (live if both else restart).append("contract.path" if both else "contract.path (on or off)")
    if old.upstream != new.upstream:
        if old.upstream.enabled and new.upstream.enabled:
            live.append("upstream")
        else:
            restart.append("upstream (on or off)")
    return live, restart


def merged(running: ProxyConfig, new: ProxyConfig) -> ProxyConfig:
    """The config the proxy runs after a reload: the live settings of `new`, everything else as started."""
    upstream = new.upstream if running.upstream.enabled and new.upstream.enabled else running.upstream
    contract = new.contract_path if running.contract_path and new.contract_path else running.contract_path
    return replace(
        running,
        contract_path=contract,
        mode=new.mode,
        auth_token=new.auth_token,
        retry_after=new.retry_after,
        upstream=upstream,
    )
