"""Wires the proxy together on one asyncio loop: receivers, contract, inspector, spool, forwarder, admin."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal as signals
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from aiohttp import web

from labctl.errors import LabError
from labctl.proxy import h2_hint, reconfigure
from labctl.proxy.admin import make_admin_app
from labctl.proxy.config import Listen, ProxyConfig, load
from labctl.proxy.forwarder import Forwarder
from labctl.proxy.grpc_receiver import GrpcReceiver
from labctl.proxy.grpc_relay import GrpcFront
from labctl.proxy.http_receiver import HttpReceiver
from labctl.proxy.ingest import ContractHolder, Ingest
from labctl.proxy.retarget import describe, retargeted
from labctl.proxy.spool import Spool
from labctl.proxy.stats import SIGNAL_NAMES, Stats
from labctl.proxy.upstream import make_sender, safe_endpoint

log = logging.getLogger("labctl.proxy")

# Read in /api/stats through `python -m json.tool` (module-1's guide): short enough for 80 columns there.
SINK_NOTE = "no upstream: data ends here (module-1) and is not forwarded"


def _default_contract_loader() -> Callable[[Any], Any]:
    from labctl.contract import load_contract

    return load_contract


def _default_inspector_factory() -> Callable[..., Any]:
    from labctl.proxy.inspect import Inspector

    return Inspector


class ProxyServer:
    def __init__(
        self,
        cfg: ProxyConfig,
        *,
        contract_loader: Callable[[Any], Any] | None = None,
        inspector_factory: Callable[..., Any] | None = None,
        can_restart: bool = False,
        grpc_front: tuple[Any, socket.socket] | None = None,
    ) -> None:
        self.cfg = cfg
        # POST /api/restart: only a proxy that is its own process (python -m labctl.proxy, `labctl proxy
        # serve`) runs its command again; one inside another program (a test) answers 409.
        self.can_restart = can_restart
        self._launched_front = grpc_front  # grpc_front.launch(), done before this module was imported
        self.restart_asked = False
        self._stop: asyncio.Event | None = None
        self.stats = Stats()
        self._contract_loader = contract_loader
        self._inspector_factory = inspector_factory
        self.spool: Spool | None = None
        self.forwarder: Forwarder | None = None
        self.inspector: Any = None
        self.contract: ContractHolder | None = None
        self._runners: list[web.AppRunner] = []
        self._grpc: grpc.aio.Server | None = None
        self._front: GrpcFront | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self.ports: dict[str, int] = {}
        self._ready = False
        self._h2_hint: h2_hint.GrpcOnHttpPortHint | None = None
        self.ingest: Ingest | None = None
        self._receivers: list[GrpcReceiver | HttpReceiver] = []
        # proxy.yaml reloads (POST /api/reload, SIGHUP): version 1 is the file read at start.
        self.config_version = 1
        self.pending_restart: list[str] = []
        self.last_reload_error = ""
        self._reload_lock = asyncio.Lock()

    # -- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        cfg = self.cfg
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            if cfg.otlp_grpc is not None:
                # The gRPC front's process starts while the rest is set up here (see grpc_relay.py).
                self._front = GrpcFront(on_lost=self._front_lost)
                launched, self._launched_front = self._launched_front, None
                await self._front.spawn(str(cfg.otlp_grpc), cfg.max_request_bytes, launched)
            await self._start_parts(cfg)
        except BaseException:
            await self.stop()
            raise
        if self.forwarder is not None:
            self._tasks.append(asyncio.create_task(self.forwarder.run(), name="forwarder"))
        if cfg.contract_reload:
            assert self.contract is not None
            self._tasks.append(asyncio.create_task(self.contract.watch(), name="contract-reload"))
        if "otlp_http" in self.ports:
            self._h2_hint = h2_hint.install(self.ports["otlp_http"], self.ports.get("otlp_grpc"))
        self._ready = True
        self._banner()

    async def _start_parts(self, cfg: ProxyConfig) -> None:
        loader = self._contract_loader or (_default_contract_loader() if cfg.contract_path else None)
        factory = self._inspector_factory or _default_inspector_factory()
        self.inspector = factory(cfg.raw, cfg.data_dir)
        # The page shows the contract before the first export arrives, and the new one after a reload.
        show = getattr(self.inspector, "set_contract", None)
        self.contract = ContractHolder(cfg.contract_path, loader, show)
        if show is not None and self.contract.current is not None:
            show(self.contract.current)
        if cfg.upstream.enabled:
            self.spool = Spool(
                cfg.data_dir / "spool.sqlite",
                max_bytes=cfg.spool_max_bytes,
                memory_bytes=cfg.queue_memory_bytes,
                overflow=cfg.spool_overflow,
                sync=cfg.spool_sync,
                stats=self.stats,
            )
            if self.spool.recovered_rows:
                log.info(
                    "spool holds %d unsent requests from before the restart: replaying them in order",
                    self.spool.recovered_rows,
                )
            self.forwarder = Forwarder(cfg.upstream, self.spool, self.stats, make_sender(cfg.upstream))
        ingest = Ingest(
            mode=cfg.mode,
            stats=self.stats,
            spool=self.spool,
            contract=self.contract,
            inspector=self.inspector,
            retry_after=cfg.retry_after,
        )
        self.ingest = ingest
        if self._front is not None:
            grpc_receiver = GrpcReceiver(ingest, self.stats, token=cfg.auth_token)
            self._receivers.append(grpc_receiver)
            self.ports["otlp_grpc"] = await self._front.ready(grpc_receiver)
        if cfg.otlp_http is not None:
            http = HttpReceiver(ingest, self.stats, max_bytes=cfg.max_request_bytes, token=cfg.auth_token)
            self._receivers.append(http)
            self.ports["otlp_http"] = await self._start_http(http.app(), cfg.otlp_http, "otlp_http")
        routes = list(self.inspector.routes(self.stats_provider)) if self.inspector is not None else []
        # The token is read per request: a proxy.yaml reload may change it (auth.bearer_token is live).
        admin = make_admin_app(
            self.stats_provider,
            self.readiness,
            routes,
            self.retarget,
            token=lambda: self.cfg.auth_token,
            allowed_hosts=cfg.allowed_hosts,
            reload=self.reload_config,
            forwarding=self.forwarding,
            switch_contract=self.switch_contract,
            restart=self.restart,
        )
        self.ports["admin"] = await self._start_http(admin, cfg.admin, "admin", decompress=True)

    def _front_lost(self) -> None:
        """The gRPC front ended by itself (killed?): serve gRPC in this process from now on."""
        if not self._ready:
            return  # starting (`ready` reports it) or stopping
        log.error(
            "the OTLP gRPC receiver process stopped; receiving gRPC in the proxy's own process from now on"
        )
        front, self._front = self._front, None
        receiver = front.receiver if front is not None else None
        if receiver is not None and self.cfg.otlp_grpc is not None:
            self._tasks.append(
                asyncio.create_task(self._grpc_in_process(receiver, self.cfg.otlp_grpc), name="grpc")
            )

    async def _grpc_in_process(self, receiver: GrpcReceiver, listen: Listen) -> None:
        # The front's listening socket closes when its process is gone: shortly after its end of input.
        for _ in range(50):
            try:
                await self._start_grpc(receiver, listen)
                return
            except LabError:
                await asyncio.sleep(0.1)
        log.error("cannot listen for OTLP gRPC on %s again: gRPC clients get no answer", listen)

    async def _start_grpc(self, receiver: GrpcReceiver, listen: Listen) -> None:
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", self.cfg.max_request_bytes),
                ("grpc.so_reuseport", 0),
            ]
        )
        for service, methods in receiver.handlers().items():
            server.add_registered_method_handlers(service, methods)
        try:
            port = server.add_insecure_port(str(listen))
        except RuntimeError:
            port = 0
        if not port:
            raise LabError(
                f"cannot listen for OTLP gRPC on {listen}: the port is in use or the address is wrong",
                "stop what uses the port (`labctl down`?) or set LAB_PROXY_OTLP_GRPC_LISTEN",
            )
        await server.start()
        self._grpc = server
        self.ports["otlp_grpc"] = port

    async def _start_http(
        self, app: web.Application, listen: Listen, name: str, decompress: bool = False
    ) -> int:
        # OTLP receivers inflate gzip themselves (bounded); aiohttp's own inflation is switched off there.
        runner = web.AppRunner(app, access_log=None, auto_decompress=decompress, handle_signals=False)
        await runner.setup()
        self._runners.append(runner)
        site = web.TCPSite(runner, listen.host, listen.port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            raise LabError(
                f"cannot listen for {name} on {listen}: {exc.strerror}",
                f"stop what uses the port (`labctl down`?) or set LAB_PROXY_{name.upper()}_LISTEN",
            ) from None
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        return int(sockets[0].getsockname()[1]) if sockets else listen.port

    async def stop(self) -> None:
        self._ready = False
        if self._h2_hint is not None:
            h2_hint.uninstall(self._h2_hint)
            self._h2_hint = None
        if self.forwarder is not None:
            await self.forwarder.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self._grpc is not None:
            await self._grpc.stop(grace=1.0)
            self._grpc = None
        if self._front is not None:
            await self._front.stop()
            self._front = None
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()
        if self.inspector is not None and hasattr(self.inspector, "close"):
            with contextlib.suppress(Exception):
                self.inspector.close()
        if self.spool is not None:
            self.spool.close()
            self.spool = None

    async def serve_forever(self) -> None:
        await self.start()
        stop = self._stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signals.SIGTERM, signals.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        # SIGHUP re-reads proxy.yaml, like the Collector (the default action would end the proxy).
        loop.add_signal_handler(signals.SIGHUP, lambda: loop.create_task(self.reload_config()))
        try:
            await stop.wait()
            log.info("stopping: unsent data stays in the spool and is sent after the next start")
        finally:
            await self.stop()

    async def restart(self, quiet: bool = False) -> tuple[int, dict[str, Any]]:
        """POST /api/restart: stop as on SIGTERM (unsent data stays in the spool), then run the same command
        again in this process (labctl/proxy/__main__.py), which reads proxy.yaml, its environment and its
        local settings afresh, restart-only settings included, as any start does; one that does not load
        makes it exit with its error, as at a start. In a container it is the same container: no engine
        stop and start (network, ports) for what a restart changes."""
        if not self.can_restart or self._stop is None:
            return 409, {"error": "this proxy runs inside another program: restart that program instead"}
        if not quiet:
            log.info("restart asked (POST /api/restart): starting again in this process")
        self.restart_asked = True
        self._stop.set()  # serve_forever stops once this answer is sent (the admin site waits for it)
        return 202, {"restarting": True}

    async def retarget(self, body: Any, quiet: bool = False) -> tuple[int, dict[str, Any]]:
        """PUT /api/upstream (body: endpoint/protocol/headers) or DELETE (body None: back to the configured
        upstream). The forwarder switches in place: counters, history and the spool stay."""
        if self.forwarder is None:
            return 409, {
                "error": "this proxy has no upstream (it is the sink, module-1): nothing to change; "
                "configure one with LAB_PROXY_UPSTREAM"
            }
        configured = self.cfg.upstream
        try:
            new = configured if body is None else retargeted(configured, self.forwarder.settings, body)
        except LabError as exc:
            return 400, {"error": exc.message + (f" — {exc.hint}" if exc.hint else "")}
        if new != self.forwarder.settings:
            await self.forwarder.retarget(new, make_sender(new), quiet=quiet)
        else:
            # Same target: retry now instead of finishing the backoff, on a fresh connection (a gRPC
            # channel that saw the upstream refuse would first wait out its own reconnect delay).
            await self.forwarder.retry_now(make_sender(new))
        return 200, describe(new, configured)

    async def forwarding(self, body: Any) -> tuple[int, dict[str, Any]]:
        """PUT /api/forwarding {"hold": true, "seconds": 30} / {"hold": false}: stop sending (everything is
        still acknowledged and spooled) or resume. A hold ends by itself after `seconds` (at most 120)."""
        if self.forwarder is None:
            return 409, {"error": "this proxy has no upstream (it is the sink, module-1): nothing to hold"}
        if not isinstance(body, dict) or not isinstance(body.get("hold"), bool):
            return 400, {"error": 'send {"hold": true, "seconds": 30} or {"hold": false}'}
        seconds = body.get("seconds", 30)
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not 0 < seconds <= 120:
            return 400, {"error": "seconds must be a number above 0 and at most 120"}
        await self.forwarder.hold(body["hold"], float(seconds))
        return 200, {
            "held": self.forwarder.held,
            "spooled_rows": self.spool.pending_rows if self.spool else 0,
        }

    async def switch_contract(self, body: Any, quiet: bool = False) -> tuple[int, dict[str, Any]]:
        """PUT /api/contract {"path": FILE}: check against another contract file from now on, loaded
        like a start would (404: no such file; 409: it does not load, nothing changes); DELETE (body
        None): back to the configured one. Like a changed contract.path on reload, without a restart."""
        if self.contract is None or self.cfg.contract_path is None:
            return 409, {"error": "this proxy checks no contract (contract.path is off): nothing to switch"}
        if body is None:
            path = self.cfg.contract_path
        elif isinstance(body, dict) and isinstance(body.get("path"), str) and body["path"]:
            # Any non-empty name is looked up as given (its schema's minLength 1): a blank one is a 404.
            path = Path(body["path"])
        else:
            return 400, {
                "error": 'send {"path": "/path/to/contract.yaml"}; DELETE restores the configured one'
            }
        if not path.is_file():  # also a folder, or a name the filesystem cannot hold
            return 404, {"error": f"no contract file at {path} (as this proxy's filesystem sees it)"}
        loader = self._contract_loader or _default_contract_loader()
        try:
            contract = await asyncio.to_thread(loader, path)
        except (LabError, OSError, ValueError) as exc:
            said = (
                exc.message + (f" — {exc.hint}" if exc.hint else "")
                if isinstance(exc, LabError)
                else str(exc)
            )
            return 409, {"error": f"{path} does not load as a contract, the one in force stays: {said}"}
        self.contract.replace(path, contract, quiet=quiet)
        return 200, {"path": str(path), "version": self.contract.version}

    async def reload_config(self) -> tuple[int, dict[str, Any]]:
        """Read proxy.yaml again and apply what can change live (labctl.proxy.reconfigure says which).

        A file that does not load changes nothing: the proxy keeps running its current configuration and
        answers 400 with the error. Restart-only changes are reported as `restart_needed`."""
        async with self._reload_lock:
            running = self.cfg
            if running.source is None:
                return 409, {"error": "this proxy was not started from a file: nothing to reload"}
            try:
                new = await asyncio.to_thread(load, running.source)
                # The inspection sections apply at the next start: they must be valid for that start too.
                from labctl.proxy.inspect.settings import InspectSettings

                InspectSettings.from_config(new.raw, new.data_dir)
                contract = None
                if running.contract_path and new.contract_path and new.contract_path != running.contract_path:
                    loader = self._contract_loader or _default_contract_loader()
                    contract = await asyncio.to_thread(loader, new.contract_path)
            except LabError as exc:
                self.last_reload_error = exc.message
                log.error(
                    "proxy.yaml reload refused, version %d keeps running: %s",
                    self.config_version,
                    exc.message,
                )
                return 400, {"error": exc.message, "hint": exc.hint or "", "version": self.config_version}
            live, restart = reconfigure.changed(running, new)
            if live:
                await self._apply_live(reconfigure.merged(running, new), contract)
                self.config_version += 1
            self.pending_restart, self.last_reload_error = restart, ""
            log.info(
                "proxy.yaml reloaded (version %d): live %s; waiting for a restart: %s",
                self.config_version,
                ", ".join(live) or "nothing changed",
                ", ".join(restart) or "nothing",
            )
            return 200, {"version": self.config_version, "applied": live, "restart_needed": restart}

    async def _apply_live(self, cfg: ProxyConfig, contract: Any) -> None:
        old, self.cfg = self.cfg, cfg
        if self.ingest is not None:
            self.ingest.mode, self.ingest.retry_after = cfg.mode, cfg.retry_after
        for receiver in self._receivers:
            receiver.set_token(cfg.auth_token)
        if self.contract is not None and cfg.contract_path != old.contract_path:
            self.contract.replace(cfg.contract_path, contract)
        # A fault may have pointed the forwarder elsewhere (PUT /api/upstream): it stays there, and its heal
        # (DELETE) returns to the new configured upstream.
        forwarder = self.forwarder
        if forwarder is not None and cfg.upstream != old.upstream and forwarder.settings == old.upstream:
            await forwarder.retarget(cfg.upstream, make_sender(cfg.upstream))

    # -- reporting ----------------------------------------------------------------------------------

    def readiness(self) -> tuple[bool, str]:
        if not self._ready:
            return False, "starting or stopping"
        return True, "receivers listening"

    def stats_provider(self) -> dict[str, Any]:
        """The transport's counters and state (GET /api/stats; rendered on /metrics by the inspector)."""
        if self.forwarder is not None:
            upstream = self.forwarder.snapshot()
            # Changed at runtime (PUT /api/upstream)? Header names only: values may be tokens.
            upstream["configured"] = self.forwarder.settings == self.cfg.upstream
            upstream["header_names"] = sorted(self.forwarder.settings.headers)
        else:
            upstream = {"endpoint": "", "protocol": "", "state": "none", "note": SINK_NOTE}
        if self.spool is not None:
            gauges = self.spool.gauges()
        else:
            zero = dict.fromkeys(SIGNAL_NAMES, 0)
            gauges = {
                "queued": zero,
                "spooled": dict(zero),
                "spool_bytes": 0,
                "spool_max_bytes": 0,
                "spool_rows": 0,
                "queue_bytes": 0,
                "queue_max_bytes": 0,
                "spool_full": False,
                "overflow_policy": self.cfg.spool_overflow,
            }
        contract = self.contract
        return {
            "uptime_s": round(time.time() - self.stats.started, 1),
            "mode": self.cfg.mode,
            "contract": {
                "path": str(contract.path) if contract and contract.path else None,
                "version": contract.version if contract else 0,
                "last_reload_error": contract.last_error if contract else "",
            },
            "config": {
                "path": str(self.cfg.source) if self.cfg.source else None,
                "version": self.config_version,
                "restart_needed": list(self.pending_restart),
                "last_reload_error": self.last_reload_error,
            },
            "upstream": upstream,
            "counters": self.stats.counters(),
            "gauges": gauges,
        }

    def _banner(self) -> None:
        cfg = self.cfg
        hosts = {"otlp_grpc": cfg.otlp_grpc, "otlp_http": cfg.otlp_http, "admin": cfg.admin}
        parts = [f"{k}={getattr(hosts[k], 'host', '')}:{v}" for k, v in self.ports.items()]
        log.info(
            "labctl proxy listening: %s (mode %s, contract %s)",
            " ".join(parts),
            cfg.mode,
            cfg.contract_path or "none",
        )
        if cfg.upstream.enabled:
            log.info(
                "forwarding to %s over %s; spool %s (limit %d bytes, overflow policy %s)",
                safe_endpoint(cfg.upstream.endpoint),
                cfg.upstream.protocol,
                cfg.data_dir / "spool.sqlite",
                cfg.spool_max_bytes,
                cfg.spool_overflow,
            )
        else:
            log.info(SINK_NOTE)
