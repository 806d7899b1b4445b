"""Test-suite wiring: fixtures live in `tests/fixtures/` and are loaded as plugins."""

import os
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = [
    "fixtures.kube",
    "fixtures.git_servers",
    "fixtures.operator",
    "fixtures.minio",
    "fixtures.faults",
    "fixtures.official_registry",
    "fixtures.api_process",
]


SHARED_DATA = Path(
    os.environ.get("MCPREG_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


@pytest.fixture(scope="session")
def require_shared_data() -> Path:
    """The real catalogues in ../shared/data; their absence fails the tests that need them."""
    if not (SHARED_DATA / "toolhive").is_dir():
        pytest.fail(f"shared data not found at {SHARED_DATA} (set MCPREG_SHARED_DATA)")
    return SHARED_DATA


def pytest_report_header(config: pytest.Config) -> str:
    from mcpreg_dev.node import busy_reason, node_mode, unavailable_reason

    mode = node_mode()
    why = "" if mode == "real" else f" ({unavailable_reason() or busy_reason() or 'MCPREG_NODE=kwok'})"
    return f"node: {mode}{why}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`make up` starts a cluster with the machine's one real node: its tests run first, before
    the session's own cluster (which holds that node until the session ends) is started."""
    items.sort(key=lambda item: 0 if item.get_closest_marker("devstack") else 1)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    """Each phase's report on the test item (`item.rep_call`), so a fixture can act on a failure
    (the browser tests keep a screenshot)."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
