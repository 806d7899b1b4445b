"""What syncs cost, as Prometheus metrics of the operator process: the time spent in each step of the
pipeline, and how syncs ended. A person looking at a slow or failing registry at 3 a.m. sees which
step it is (the source, parsing, signing, storage) without reading logs; the signing benchmark reads
the same figures to say what signing costs of a real sync.

Labels are the step and the outcome only, never the registry: one series per registry would grow
with the cluster (the registry's own status and Events say which one)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING

from prometheus_client import Counter, Histogram

if TYPE_CHECKING:  # sync times its steps with this module
    from mcpreg_operator.sync import SyncOutcome

# From a ls-remote on loopback to a 50 MiB catalogue parsed on a busy node.
STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class SyncStep(StrEnum):
    REVISION = "revision"  # asking the source whether it changed (ls-remote, a conditional GET, ...)
    FETCH = "fetch"  # downloading the catalogue
    PREPARE = "prepare"  # parsing, validating, filtering, rendering and hashing
    SIGN = "sign"  # signing the documents served whole
    STORE = "store"  # writing the generation (or confirming storage still holds it)


class SyncResult(StrEnum):
    STORED = "stored"  # a new generation was written
    UNCHANGED = "unchanged"  # nothing to write: the same data is stored
    FAILED = "failed"


STEP_SECONDS = Histogram(
    "mcpreg_operator_sync_step_seconds",
    "Time syncs spent in each step of the pipeline.",
    ["step"],
    buckets=STEP_BUCKETS,
)
SYNCS = Counter("mcpreg_operator_syncs", "Syncs, by how they ended.", ["result"])


@contextmanager
def timed_step(step: SyncStep) -> Iterator[None]:
    """Time the block as `step`, whether it succeeds or raises."""
    started = time.perf_counter()
    try:
        yield
    finally:
        STEP_SECONDS.labels(step.value).observe(time.perf_counter() - started)


def count_sync(succeeded: SyncOutcome | None) -> None:
    """One sync ended: `succeeded` is its outcome, None when it failed."""
    result = (
        SyncResult.FAILED
        if succeeded is None
        else SyncResult.STORED
        if succeeded.written
        else SyncResult.UNCHANGED
    )
    SYNCS.labels(result.value).inc()
