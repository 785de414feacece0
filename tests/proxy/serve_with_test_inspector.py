"""TEMPORARY (test-only): run the proxy server with the test inspector adapter until
labctl.proxy.inspect.Inspector lands. Same ProxyServer, same config loader as `labctl proxy serve`."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from proxy_harness import TemporaryInspector

from labctl.proxy import config
from labctl.proxy.server import ProxyServer

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
asyncio.run(ProxyServer(config.load(Path(sys.argv[1])), inspector_factory=TemporaryInspector).serve_forever())
