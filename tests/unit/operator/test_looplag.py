"""The event-loop lag monitor: what it measures, what it exports, how it starts."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from prometheus_client import REGISTRY, CollectorRegistry

from mcpreg_operator import looplag
from mcpreg_operator.looplag import LoopLagMetrics, LoopLagMonitor, WindowMax, start_lag_monitor

HISTOGRAM = "mcpreg_operator_event_loop_lag_seconds"
GAUGE = "mcpreg_operator_event_loop_lag_max_seconds"


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    found = registry.get_sample_value(name, labels)
    assert found is not None, name
    return found


def test_window_max_forgets_what_is_older_than_the_window() -> None:
    window = WindowMax(60.0)
    assert window.add(0.0, 0.5) == 0.5
    assert window.add(10.0, 0.1) == 0.5
    assert window.add(59.9, 0.2) == 0.5
    assert window.add(60.0, 0.05) == 0.2  # 0.5 (at 0) has left the window; 0.2 is the largest since
    assert window.add(119.8, 0.0) == 0.2
    assert window.add(119.9, 0.0) == 0.05  # the window is (now - 60 s, now]
    assert window.add(120.0, 0.0) == 0.0
    assert window.add(200.0, 0.3) == 0.3


def test_samples_go_to_the_histogram_and_the_recent_maximum() -> None:
    registry = CollectorRegistry()
    seen: list[float] = []
    monitor = LoopLagMonitor(metrics=LoopLagMetrics(registry), on_sample=seen.append)
    monitor.record(100.0, 0.003)
    monitor.record(100.1, 0.4)
    monitor.record(100.2, -0.0001)  # a timer that fired a hair early counts as on time
    assert seen == [0.003, 0.4, 0.0]
    assert value(registry, f"{HISTOGRAM}_count") == 3
    assert value(registry, f"{HISTOGRAM}_bucket", le="0.005") == 2
    assert value(registry, f"{HISTOGRAM}_bucket", le="0.25") == 2
    assert value(registry, f"{HISTOGRAM}_bucket", le="0.5") == 3
    assert value(registry, GAUGE) == 0.4
    monitor.record(160.2, 0.001)  # a minute later the stall has aged out of the gauge
    assert value(registry, GAUGE) == 0.001
    assert monitor.worst == 0.4 and monitor.samples == 4


def test_a_long_stall_is_logged_once_per_window(caplog: pytest.LogCaptureFixture) -> None:
    monitor = LoopLagMonitor(metrics=LoopLagMetrics(CollectorRegistry()))
    with caplog.at_level(logging.WARNING, logger=looplag.__name__):
        monitor.record(0.0, 1.5)
        monitor.record(1.0, 2.0)
        monitor.record(61.0, 1.2)
    assert [r.getMessage() for r in caplog.records] == [
        "the event loop was blocked for 1.50 s (a step hogged it or the CPU)",
        "the event loop was blocked for 1.20 s (a step hogged it or the CPU)",
    ]


async def test_a_blocked_loop_shows_as_one_late_wake_up() -> None:
    registry = CollectorRegistry()
    seen: list[float] = []
    monitor = LoopLagMonitor(interval=0.02, metrics=LoopLagMetrics(registry), on_sample=seen.append)
    monitor.start()
    await asyncio.sleep(0.1)
    time.sleep(0.3)  # noqa: ASYNC251  (the point: hold the loop)
    await asyncio.sleep(0.1)
    await monitor.stop()
    assert monitor.task is None
    late = [lag for lag in seen if lag > 0.1]
    assert len(late) == 1 and 0.25 < late[0] < 1.0, seen
    assert value(registry, GAUGE) == max(seen)
    assert value(registry, f"{HISTOGRAM}_count") == len(seen) >= 5


async def test_start_lag_monitor_runs_once_per_loop_into_the_default_registry() -> None:
    first = start_lag_monitor(interval=0.01)
    assert start_lag_monitor() is first
    before = REGISTRY.get_sample_value(f"{HISTOGRAM}_count") or 0.0
    await asyncio.sleep(0.1)
    assert value(REGISTRY, f"{HISTOGRAM}_count") > before
    await first.stop()
    second = start_lag_monitor(interval=0.01)
    assert second is not first and second.metrics is first.metrics  # registered once
    await second.stop()


def test_interval_and_window_are_checked() -> None:
    with pytest.raises(ValueError, match="interval"):
        LoopLagMonitor(interval=0, metrics=LoopLagMetrics(CollectorRegistry()))
    with pytest.raises(ValueError, match="window"):
        LoopLagMonitor(interval=1, window=0.5, metrics=LoopLagMetrics(CollectorRegistry()))
