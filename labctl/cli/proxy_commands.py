"""`labctl proxy ...`: run the logging proxy (more proxy commands register on `proxy_app`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

cli = typer.Typer()  # this module's commands and groups; labctl.cli mounts them (COMMANDS)


proxy_app = typer.Typer(
    help="The logging proxy: OTLP in, contract check, inspection, lossless forwarding.", no_args_is_help=True
)
cli.add_typer(proxy_app, name="proxy")


@proxy_app.command("serve")
def serve(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="Proxy config YAML (e.g. lab/proxy/proxy.yaml).")
    ],
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="A dry run: validate every section of the config and "
            "load the contract, then exit without listening.",
        ),
    ] = False,
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning or error.")] = "info",
) -> None:
    """Run the proxy in the foreground until SIGTERM / Ctrl-C."""
    from labctl.proxy import config as proxy_config

    cfg = proxy_config.load(config)
    if check:
        # Everything start() would refuse, without binding a port or starting a process (like
        # `otelcol validate`): the transport sections above, the inspection sections and the contract.
        from labctl.contract import load_contract
        from labctl.proxy.inspect.settings import InspectSettings

        InspectSettings.from_config(cfg.raw, cfg.data_dir)
        contract = load_contract(cfg.contract_path) if cfg.contract_path is not None else None
        typer.echo(
            f"{config}: ok (mode {cfg.mode}, upstream {cfg.upstream.endpoint or 'none: the proxy is the sink'}, "
            f"contract {f'{contract.name!r} with {len(contract.spec.metrics)} metrics' if contract else 'none'})"
        )
        return
    from labctl.proxy.__main__ import serve as serve_proxy

    serve_proxy(cfg, log_level)
