"""Test-suite wiring: fixtures live in `tests/fixtures/` and are loaded as plugins."""

import os
from pathlib import Path

import pytest

pytest_plugins = ["fixtures.kube", "fixtures.git_servers", "fixtures.operator", "fixtures.minio"]


SHARED_DATA = Path(
    os.environ.get("MCPREG_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


@pytest.fixture(scope="session")
def require_shared_data() -> Path:
    """The real catalogues in ../shared/data; their absence fails the tests that need them."""
    if not (SHARED_DATA / "toolhive").is_dir():
        pytest.fail(f"shared data not found at {SHARED_DATA} (set MCPREG_SHARED_DATA)")
    return SHARED_DATA
