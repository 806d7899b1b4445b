"""Bounded concurrency for the many small requests a split catalogue needs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


async def bounded_gather(jobs: Sequence[Callable[[], Awaitable[T]]], limit: int) -> list[T]:
    """Run `jobs` at most `limit` at a time; results in order.

    On the first failure the remaining jobs are cancelled and awaited before the error propagates
    (plain `asyncio.gather` would leave them running, and `TaskGroup` would wrap the error in an
    ExceptionGroup that callers matching on a specific error would miss).
    """
    semaphore = asyncio.Semaphore(max(1, limit))

    async def run(job: Callable[[], Awaitable[T]]) -> T:
        async with semaphore:
            return await job()

    tasks = [asyncio.ensure_future(run(job)) for job in jobs]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
