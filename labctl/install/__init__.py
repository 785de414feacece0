"""Binaries the native runtime needs: resolve them, or build/install them into the lab's cache.

`resolve_binary(name)` finds `otelcol-lab`, `prometheus`, `promtool` or `grafana`;
`install(component, source=...)` builds (Go) or downloads (official, checksum-verified archives)
`collector`, `prometheus`, `grafana` or `all`.
"""

from __future__ import annotations

from labctl.install.components import COMPONENTS, SOURCES, install
from labctl.install.paths import bin_dir, cache_dir
from labctl.install.resolve import BINARIES, env_var_for, grafana_home, resolve_binary

__all__ = [
    "BINARIES",
    "COMPONENTS",
    "SOURCES",
    "bin_dir",
    "cache_dir",
    "env_var_for",
    "grafana_home",
    "install",
    "resolve_binary",
]
