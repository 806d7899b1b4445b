"""Event-loop lag: how late the operator's event loop wakes a task that asked to sleep.

Everything the operator does - watch streams, every registry's sync, Kopf's daemons and probes - shares
one event loop, so any step that holds it (CPU work on the loop, or a thread holding the GIL) delays
all of them at once. A monitor task sleeps `interval` seconds (100 ms) at a time and records by how
much each wake-up came late:

- `mcpreg_operator_event_loop_lag_seconds`, a histogram of every sample (p99 with
  `histogram_quantile(0.99, rate(mcpreg_operator_event_loop_lag_seconds_bucket[5m]))`);
- `mcpreg_operator_event_loop_lag_max_seconds`, a gauge of the longest lag over the last minute, so a
  single long stall stays visible to a scrape every 30 s or so.

A stall longer than the interval is one late sample, not several: the gauge shows its full length.
Costs ten wake-ups a second and a few microseconds each. Start it from a Kopf startup handler:

    looplag.start_lag_monitor()
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable

from prometheus_client import REGISTRY, CollectorRegistry, Gauge, Histogram

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 0.1
DEFAULT_WINDOW = 60.0
# From scheduler noise (~1 ms) to a loop blocked for seconds.
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A wake-up this late is worth a line in the log (rate-limited to one per window).
WARN_ABOVE = 1.0


class LoopLagMetrics:
    """The two metrics, in `registry` (the process's default registry unless told otherwise)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.lag = Histogram(
            "mcpreg_operator_event_loop_lag_seconds",
            "How late the operator's event loop woke a task sleeping a fixed interval.",
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self.max_recent = Gauge(
            "mcpreg_operator_event_loop_lag_max_seconds",
            "Longest event-loop lag over the last minute.",
            registry=registry,
        )


_default_metrics: LoopLagMetrics | None = None


def default_metrics() -> LoopLagMetrics:
    """The metrics in the default registry, created once (a second registration would fail)."""
    global _default_metrics
    if _default_metrics is None:
        _default_metrics = LoopLagMetrics()
    return _default_metrics


class WindowMax:
    """The maximum of the values recorded in the last `window` seconds (amortised O(1) per value)."""

    def __init__(self, window: float) -> None:
        self.window = window
        # (time, value) with values strictly decreasing: the front is the current maximum.
        self._candidates: collections.deque[tuple[float, float]] = collections.deque()

    def add(self, now: float, value: float) -> float:
        """Record `value` at `now` and return the maximum over the window ending at `now`."""
        while self._candidates and self._candidates[-1][1] <= value:
            self._candidates.pop()
        self._candidates.append((now, value))
        while self._candidates[0][0] <= now - self.window:
            self._candidates.popleft()
        return self._candidates[0][1]


class LoopLagMonitor:
    """Samples the running loop's lag every `interval` seconds into `metrics`.

    `on_sample(lag)`, when given, is called with each sample too (benchmarks record them).
    """

    def __init__(
        self,
        *,
        interval: float = DEFAULT_INTERVAL,
        window: float = DEFAULT_WINDOW,
        metrics: LoopLagMetrics | None = None,
        on_sample: Callable[[float], None] | None = None,
    ) -> None:
        if interval <= 0 or window < interval:
            raise ValueError("interval must be positive and window at least one interval")
        self.interval = interval
        self.metrics = metrics if metrics is not None else default_metrics()
        self.on_sample = on_sample
        self.samples = 0
        self.worst = 0.0  # since start
        self._window = WindowMax(window)
        self._last_warning: float | None = None
        self.task: asyncio.Task[None] | None = None

    def record(self, now: float, lag: float) -> None:
        """One sample: `lag` seconds late at loop time `now`."""
        lag = max(lag, 0.0)  # a timer may fire a hair early
        self.samples += 1
        self.worst = max(self.worst, lag)
        self.metrics.lag.observe(lag)
        self.metrics.max_recent.set(self._window.add(now, lag))
        if lag >= WARN_ABOVE and (
            self._last_warning is None or now - self._last_warning >= self._window.window
        ):
            self._last_warning = now
            log.warning("the event loop was blocked for %.2f s (a step hogged it or the CPU)", lag)
        if self.on_sample is not None:
            self.on_sample(lag)

    async def run(self) -> None:
        """Sample until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            now = loop.time()
            self.record(now, now - due)

    def start(self) -> LoopLagMonitor:
        """Run on the current loop, as a task this monitor holds on to."""
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self.run(), name="event-loop-lag")
        return self

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None


_monitors: dict[asyncio.AbstractEventLoop, LoopLagMonitor] = {}


def start_lag_monitor(
    *, interval: float = DEFAULT_INTERVAL, on_sample: Callable[[float], None] | None = None
) -> LoopLagMonitor:
    """Start sampling the running loop into the default registry's metrics (once per loop).

    Meant for the operator's Kopf startup handler. The task ends with the loop (`asyncio.run`
    cancels what is left when the operator exits); calling this again on the same loop returns the
    running monitor.
    """
    loop = asyncio.get_running_loop()
    for known in [known for known in _monitors if known.is_closed()]:
        del _monitors[known]
    monitor = _monitors.get(loop)
    if monitor is None or monitor.task is None or monitor.task.done():
        monitor = _monitors[loop] = LoopLagMonitor(interval=interval, on_sample=on_sample)
    return monitor.start()
