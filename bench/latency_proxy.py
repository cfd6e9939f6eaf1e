"""A reverse proxy that adds a fixed delay to every request: loopback with production's latency.

``requests`` counts what went through.
"""

from __future__ import annotations

import threading
import time

from dev.loopback import Relay


class LatencyProxy(Relay):
    def __init__(self, upstream: str, delay_seconds: float) -> None:
        super().__init__(upstream)
        self.delay = delay_seconds
        self.requests = 0
        self._lock = threading.Lock()

    def intercept(self, method: str, path: str) -> None:
        with self._lock:
            self.requests += 1
        time.sleep(self.delay)
        return None

    def __enter__(self) -> LatencyProxy:
        super().__enter__()
        return self
