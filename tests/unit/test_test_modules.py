"""pytest imports test files by their basename (the test folders are not packages), so two test files
of one name anywhere under tests/ stop the whole run at collection ("import file mismatch"). A unit
test and an integration test of one feature are the usual pair: name them apart."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_every_test_module_has_a_name_of_its_own() -> None:
    paths: dict[str, list[str]] = defaultdict(list)
    for path in TESTS.rglob("test_*.py"):
        paths[path.name].append(str(path.relative_to(TESTS)))
    assert len(paths) > 50  # the suite is found at all
    assert {name: where for name, where in paths.items() if len(where) > 1} == {}
