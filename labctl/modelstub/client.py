"""`labctl claude`: run the pinned real Claude Code against the running lab, offline.

The client's model requests go to the lab's model stub (which plays one scenario), its telemetry goes
through the `labctl env` block to the proxy. HOME and the client's config live in the lab's state dir,
so the user's own ~/.claude is never read or written, and no onboarding prompt appears.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from labctl.emulator.labenv import STUB_API_KEY, STUB_SERVICE, client_env, stub_running
from labctl.errors import LabError
from labctl.model import load_model
from labctl.modelstub.scenario import Scenario, load_dir
from labctl.modelstub.server import SCENARIO_HEADER
from labctl.state import LabState

# Variables of the user's shell that would send the client elsewhere than the lab, or to their account.
_SCRUB_PREFIXES = ("ANTHROPIC_", "OTEL_EXPORTER_OTLP_", "CLAUDE_CONFIG_DIR", "AWS_BEARER_TOKEN_BEDROCK")
_SCRUB = {"CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX", "CLAUDE_CODE_OAUTH_TOKEN"}
# Offline and quiet: no auto-update, no error reporting or other traffic besides the model and OTLP.
_OFFLINE = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_AUTOUPDATER": "1",
    # Give the exporters time to flush when a `-p` run ends (the client's default is 2 s).
    "CLAUDE_CODE_OTEL_SHUTDOWN_TIMEOUT_MS": "5000",
}


def scenarios() -> dict[str, Scenario]:
    return load_dir(load_model().root / "lab" / "scenarios")


def scenario(name: str) -> Scenario:
    known = scenarios()
    if name not in known:
        raise LabError(f"no scenario {name!r}", f"scenarios: {', '.join(known)} (files in lab/scenarios/)")
    return known[name]


@dataclass
class ClientRun:
    """One prepared run: the command line, its environment and where it works."""

    cmd: list[str]
    env: dict[str, str]
    workdir: Path
    home: Path
    scenario: Scenario
    block: dict[str, str] = field(default_factory=dict)  # what the lab set (for the header line)


def home_dir(lab: LabState) -> Path:
    return lab.dir / "claude" / "home"


def _write_config(home: Path, workdir: Path) -> Path:
    """The client's own settings, pre-answered: onboarding done, the dummy key approved, the folder trusted."""
    config_dir = home / ".claude"
    config_dir.mkdir(parents=True, exist_ok=True)
    doc = {
        "hasCompletedOnboarding": True,
        "theme": "dark",
        "autoUpdates": False,
        "customApiKeyResponses": {"approved": [STUB_API_KEY[-20:]], "rejected": []},
        "projects": {
            str(workdir): {
                "hasTrustDialogAccepted": True,
                "hasCompletedProjectOnboarding": True,
                "allowedTools": [],
            }
        },
    }
    for path in (home / ".claude.json", config_dir / ".claude.json"):
        path.write_text(json.dumps(doc, indent=2) + "\n")
    return config_dir


def prepare(
    lab: LabState,
    binary: Path,
    name: str,
    args: list[str],
    *,
    protocol: str = "grpc",
    workdir: Path | None = None,
    interactive: bool = False,
    traces: bool = False,
    base_env: dict[str, str] | None = None,
) -> ClientRun:
    if not stub_running(lab):
        model = load_model()
        raise LabError(
            f"the lab's model stub is not running ({lab.stage or 'no stage'}, {lab.runtime} runtime)",
            f"`labctl up {lab.stage or 'module-1'}` starts it with the other services "
            f"({STUB_SERVICE} is part of {', '.join(model.stages)})",
        )
    chosen = scenario(name)
    if workdir is None:
        # labctl's own folder, emptied for every run: the same scenario gives the same files and figures.
        work = (lab.dir / "claude" / "work" / chosen.name).resolve()
        shutil.rmtree(work, ignore_errors=True)
    else:
        work = workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    home = home_dir(lab)
    config_dir = _write_config(home, work)

    source = dict(os.environ if base_env is None else base_env)
    env = {k: v for k, v in source.items() if not k.startswith(_SCRUB_PREFIXES) and k not in _SCRUB}
    block = {k: v for k, v in client_env(lab, protocol).items() if v is not None}
    env.update(block)
    env.update(_OFFLINE)
    env.update(
        {
            "HOME": str(home),
            "CLAUDE_CONFIG_DIR": str(config_dir),
            "ANTHROPIC_CUSTOM_HEADERS": f"{SCENARIO_HEADER}: {chosen.name}",
        }
    )
    if chosen.max_retries is not None:
        env["CLAUDE_CODE_MAX_RETRIES"] = str(chosen.max_retries)
    if traces:
        env.update(
            {
                "CLAUDE_CODE_ENHANCED_TELEMETRY_BETA": "1",
                "OTEL_TRACES_EXPORTER": "otlp",
                "OTEL_TRACES_EXPORT_INTERVAL": "1000",
            }
        )
    cmd = [str(binary)]
    if not interactive:
        cmd += ["-p", chosen.prompt]
    if chosen.allowed_tools:
        cmd += ["--allowedTools", ",".join(chosen.allowed_tools)]
    if chosen.disallowed_tools:
        cmd += ["--disallowedTools", ",".join(chosen.disallowed_tools)]
    if chosen.model and "--model" not in args:
        cmd += ["--model", chosen.model]
    cmd += args
    return ClientRun(cmd=cmd, env=env, workdir=work, home=home, scenario=chosen, block=block)


def run(prepared: ClientRun) -> int:
    """Run the client in the foreground (its terminal is the user's); its exit status is returned."""
    try:
        return subprocess.run(prepared.cmd, env=prepared.env, cwd=prepared.workdir, check=False).returncode
    except OSError as exc:
        raise LabError(
            f"cannot run {prepared.cmd[0]}: {exc.strerror}",
            "reinstall it with `labctl install claude-code --force`",
        ) from None
