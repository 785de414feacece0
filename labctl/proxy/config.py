"""The proxy's configuration: YAML with `${VAR:-default}` expansion, validated into typed settings.

Validation happens before anything starts and every error names the key, the bad value and the fix.
Sections the inspection side reads (`inspect`, `alerts`, `redact`, ...) are passed through untouched
to `Inspector(config, data_dir)`; they are validated there.
"""

from __future__ import annotations

import json
import os
import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from labctl.errors import LabError
from labctl.units import parse_duration, parse_size

_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

# Sections owned by the inspection side; this module only checks they are mappings or lists.
PASS_THROUGH = ("inspect", "alerts", "redact", "sessions", "log")
_MODES = ("observe", "enforce", "learn")  # learn: observe, and record what the contract lacks
_PROTOCOLS = ("grpc", "http/protobuf")
_OVERFLOW = ("reject", "drop_oldest")
_SYNC = ("normal", "full")


def expand(text: str, env: dict[str, str], where: str) -> str:
    """`${VAR}` / `${VAR:-default}` like the Collector and compose; `$$` is a literal `$`."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, default = m.group(1), m.group(2)
        value = env.get(name)
        if value is None or (value == "" and default is not None):
            if default is None:
                raise LabError(
                    f"{where}: environment variable {name} is not set",
                    f"set {name}, or write ${{{name}:-default}} in the config to give a default",
                )
            return default
        return value

    return _VAR.sub(sub, text)


def _expand_tree(node: Any, env: dict[str, str], where: str) -> Any:
    if isinstance(node, str):
        return expand(node, env, where)
    if isinstance(node, dict):
        return {k: _expand_tree(v, env, f"{where}.{k}") for k, v in node.items()}
    if isinstance(node, list):
        return [_expand_tree(v, env, f"{where}[{i}]") for i, v in enumerate(node)]
    return node


@dataclass(frozen=True)
class Listen:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class RetrySettings:
    initial_interval: float = 0.5
    max_interval: float = 10.0
    multiplier: float = 2.0
    max_retry_after: float = 60.0


@dataclass(frozen=True)
class UpstreamSettings:
    endpoint: str = ""  # empty: no upstream, the proxy is the sink
    protocol: str = "grpc"
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = 10.0
    retry: RetrySettings = field(default_factory=RetrySettings)
    batch_max_bytes: int = 4 * 1024 * 1024

    @property
    def enabled(self) -> bool:
        return bool(self.endpoint)


@dataclass(frozen=True)
class ProxyConfig:
    otlp_grpc: Listen | None
    otlp_http: Listen | None
    admin: Listen
    data_dir: Path
    contract_path: Path | None
    mode: str
    contract_reload: bool
    auth_token: str
    allowed_hosts: tuple[str, ...]  # Host names the admin listener answers besides IPs and localhost
    max_request_bytes: int
    upstream: UpstreamSettings
    queue_memory_bytes: int
    spool_max_bytes: int
    spool_overflow: str
    spool_sync: str
    retry_after: float  # seconds advised to clients when the spool is full
    raw: dict[str, Any]  # the expanded YAML, for the inspection side
    source: Path | None = None


class _Section:
    """Reads one mapping, remembering which keys were used so leftovers are reported as typos."""

    def __init__(self, data: Any, where: str, allowed: tuple[str, ...]) -> None:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise LabError(
                f"{where} must be a mapping, got {type(data).__name__}",
                f"write {where} as `key: value` lines",
            )
        unknown = sorted(set(map(str, data)) - set(allowed))
        if unknown:
            raise LabError(
                f"{where}: unknown key(s) {', '.join(unknown)}", f"known keys are: {', '.join(allowed)}"
            )
        self.data, self.where = data, where

    def get(self, key: str, default: Any = None) -> Any:
        v = self.data.get(key, default)
        return default if v is None else v

    def path(self, key: str) -> str:
        return f"{self.where}.{key}"


def parse_listen(value: Any, where: str, optional: bool) -> Listen | None:
    text = str(value if value is not None else "").strip()
    if text in ("", "off", "none") and optional:
        return None
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not (0 <= int(port) <= 65535):
        raise LabError(
            f"{where}: {text!r} is not a listen address",
            "write HOST:PORT, e.g. 127.0.0.1:4317" + (" (or `off` to disable it)" if optional else ""),
        )
    return Listen(host.strip("[]") or "127.0.0.1", int(port))


def parse_headers(value: Any, where: str) -> dict[str, str]:
    """A mapping, or the OTEL_EXPORTER_OTLP_HEADERS form `k=v,k2=v2` with percent-encoded values."""
    if isinstance(value, dict):
        return {str(k).strip().lower(): str(v) for k, v in value.items()}
    text = str(value or "").strip()
    headers: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, val = part.partition("=")
        if not sep or not key.strip():
            # Never echo the value: it may be a token.
            raise LabError(
                f"{where}: entry {len(headers) + 1} is not key=value",
                "write headers as key=value,key2=value2 (percent-encode spaces: Bearer%20TOKEN)",
            )
        headers[urllib.parse.unquote(key.strip()).lower()] = urllib.parse.unquote(val.strip())
    return headers


def _choice(value: Any, where: str, choices: tuple[str, ...]) -> str:
    text = str(value).strip().lower()
    if text not in choices:
        raise LabError(
            f"{where}: {value!r} is not one of {', '.join(choices)}",
            f"set {where} to one of: {', '.join(choices)}",
        )
    return text


def _bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise LabError(f"{where}: {value!r} is not true or false", f"set {where} to true or false")


def _upstream(sec: _Section) -> UpstreamSettings:
    endpoint = str(sec.get("endpoint", "")).strip()
    protocol = _choice(sec.get("protocol", "grpc"), sec.path("protocol"), _PROTOCOLS)
    if endpoint:
        parsed = urllib.parse.urlparse(endpoint if "://" in endpoint else f"http://{endpoint}")
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise LabError(
                f"{sec.path('endpoint')}: {endpoint!r} is not an http(s) URL",
                "write the upstream as http://HOST:PORT (or leave it empty: the proxy is the sink)",
            )
        if "://" not in endpoint:
            endpoint = f"http://{endpoint}"
        try:
            _ = parsed.port
        except ValueError:
            raise LabError(
                f"{sec.path('endpoint')}: {endpoint!r} has an invalid port",
                "write the upstream as http://HOST:PORT",
            ) from None
    r = _Section(
        sec.get("retry"),
        sec.path("retry"),
        ("initial_interval", "max_interval", "multiplier", "max_retry_after"),
    )
    retry = RetrySettings(
        initial_interval=parse_duration(r.get("initial_interval", 0.5), r.path("initial_interval")),
        max_interval=parse_duration(r.get("max_interval", 10), r.path("max_interval")),
        multiplier=float(r.get("multiplier", 2.0)),
        max_retry_after=parse_duration(r.get("max_retry_after", 60), r.path("max_retry_after")),
    )
    if retry.multiplier < 1:
        raise LabError(f"{r.path('multiplier')} must be at least 1", "use 2 for doubling backoff")
    return UpstreamSettings(
        endpoint=endpoint,
        protocol=protocol,
        headers=parse_headers(sec.get("headers", ""), sec.path("headers")),
        timeout=parse_duration(sec.get("timeout", 10), sec.path("timeout")),
        retry=retry,
        batch_max_bytes=parse_size(sec.get("batch_max_bytes", "4MiB"), sec.path("batch_max_bytes")),
    )


def _names(value: Any, where: str) -> tuple[str, ...]:
    """A list of host names, or one comma-separated string (how an env variable gives them)."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise LabError(
            f"{where} must be a list of host names or one comma-separated string",
            f"e.g. {where.split('.')[-1]}: [proxy, lab.example.org]",
        )
    return tuple(i.strip() for i in items if i.strip())


def with_local_env(env: dict[str, str]) -> dict[str, str]:
    """env with the settings of the JSON file LAB_PROXY_LOCAL_ENV names over it: labctl writes a fault's
    settings there, so a restart applies them without a new container (Docker) or process env."""
    path = env.get("LAB_PROXY_LOCAL_ENV")
    if not path:
        return env
    try:
        local = json.loads(Path(path).read_text() or "{}")
    except FileNotFoundError:
        return env
    except (OSError, ValueError) as exc:
        raise LabError(
            f"cannot read the local settings {path} (LAB_PROXY_LOCAL_ENV): {exc}",
            "`labctl heal --all` writes it again",
        ) from None
    if not isinstance(local, dict):
        raise LabError(f"{path} (LAB_PROXY_LOCAL_ENV) must hold a JSON object", "`labctl heal --all`")
    return {**env, **{str(k): str(v) for k, v in local.items()}}


def from_dict(
    raw: Any, base_dir: Path, source: Path | None = None, env: dict[str, str] | None = None
) -> ProxyConfig:
    """Expand and validate an already-parsed YAML document."""
    env = with_local_env(dict(os.environ)) if env is None else env
    where = str(source) if source else "proxy config"
    data = _expand_tree(raw if raw is not None else {}, env, where)
    top = _Section(
        data,
        where,
        ("listen", "data_dir", "contract", "auth", "limits", "upstream", "queue", "spool", *PASS_THROUGH),
    )
    listen = _Section(top.get("listen"), "listen", ("otlp_grpc", "otlp_http", "admin"))
    contract = _Section(top.get("contract"), "contract", ("path", "mode", "reload"))
    auth = _Section(top.get("auth"), "auth", ("bearer_token", "allowed_hosts"))
    limits = _Section(top.get("limits"), "limits", ("max_request_bytes", "retry_after"))
    queue = _Section(top.get("queue"), "queue", ("memory_bytes",))
    spool = _Section(top.get("spool"), "spool", ("max_bytes", "overflow", "sync"))
    for name in PASS_THROUGH:
        if data.get(name) is not None and not isinstance(data[name], (dict, list)):
            raise LabError(
                f"{name} must be a mapping or a list", f"see lab/proxy/proxy.yaml for the {name} section"
            )

    def rel(p: str) -> Path:
        path = Path(p).expanduser()
        return path if path.is_absolute() else base_dir / path

    cpath = str(contract.get("path", "")).strip()
    grpc_l = parse_listen(listen.get("otlp_grpc", "127.0.0.1:4317"), "listen.otlp_grpc", True)
    http_l = parse_listen(listen.get("otlp_http", "127.0.0.1:4318"), "listen.otlp_http", True)
    admin_l = parse_listen(listen.get("admin", "127.0.0.1:4320"), "listen.admin", False)
    assert admin_l is not None
    if grpc_l is None and http_l is None:
        raise LabError("both OTLP receivers are off", "enable listen.otlp_grpc or listen.otlp_http")
    cfg = ProxyConfig(
        otlp_grpc=grpc_l,
        otlp_http=http_l,
        admin=admin_l,
        # data_dir is relative to the working directory (where the student runs it), the contract to the file.
        data_dir=Path(str(top.get("data_dir", "~/.local/state/labctl/proxy"))).expanduser(),
        contract_path=rel(cpath) if cpath else None,
        mode=_choice(contract.get("mode", "observe"), "contract.mode", _MODES),
        contract_reload=_bool(contract.get("reload", True), "contract.reload"),
        auth_token=str(auth.get("bearer_token", "")).strip(),
        allowed_hosts=_names(auth.get("allowed_hosts", "proxy"), "auth.allowed_hosts"),
        max_request_bytes=parse_size(limits.get("max_request_bytes", "64MiB"), "limits.max_request_bytes"),
        upstream=_upstream(
            _Section(
                top.get("upstream"),
                "upstream",
                ("endpoint", "protocol", "headers", "timeout", "retry", "batch_max_bytes"),
            )
        ),
        queue_memory_bytes=parse_size(queue.get("memory_bytes", "32MiB"), "queue.memory_bytes"),
        spool_max_bytes=parse_size(spool.get("max_bytes", "256MiB"), "spool.max_bytes"),
        spool_overflow=_choice(spool.get("overflow", "reject"), "spool.overflow", _OVERFLOW),
        spool_sync=_choice(spool.get("sync", "normal"), "spool.sync", _SYNC),
        retry_after=parse_duration(limits.get("retry_after", 5), "limits.retry_after"),
        raw=data,
        source=source,
    )
    if cfg.mode == "enforce" and cfg.contract_path is None:
        raise LabError(
            "contract.mode is enforce but no contract.path is set",
            "set contract.path (LAB_PROXY_CONTRACT) or use mode observe",
        )
    if cfg.contract_path is not None and not cfg.contract_path.is_file():
        raise LabError(
            f"contract file {cfg.contract_path} does not exist",
            "fix contract.path (LAB_PROXY_CONTRACT) or leave it empty to run without a contract",
        )
    return cfg


def load(path: Path, env: dict[str, str] | None = None) -> ProxyConfig:
    """Read, expand and validate a proxy config file."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise LabError(
            f"cannot read proxy config {path}: {exc.strerror}",
            "pass an existing file with --config, e.g. lab/proxy/proxy.yaml",
        ) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise LabError(
            f"{path} is not valid YAML{at}: {getattr(exc, 'problem', exc)}",
            "fix the YAML syntax (indentation, colons, quotes) at that spot",
        ) from None
    return from_dict(raw, path.parent, path, env)
