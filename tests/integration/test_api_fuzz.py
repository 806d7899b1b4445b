"""Schemathesis (the CLI, `--checks all`) against the served OpenAPI document of a real `mcpreg serve`:
generated requests, valid and invalid, for every operation; every response checked for 5xx, and for
status codes, content types, headers and bodies the document does not declare, and for valid input
refused or invalid input accepted. The number of cases it ran is printed (`pytest -s` shows it).

Two things the document cannot express (our cursors, real server names) are supplied by the hook
below (schemathesis loads this module as its hooks when it runs; see `api_cases`).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis

from integration.api_cases import is_positive, shape_positive_case
from integration.test_api_server import LATEST, ApiProcess, needs_shared, start_api

pytestmark = needs_shared

EXAMPLES_PER_OPERATION = int(os.environ.get("MCPREG_FUZZ_EXAMPLES", "100"))
SEED = os.environ.get("MCPREG_FUZZ_SEED", "20261121")
TESTS_DIR = Path(__file__).resolve().parents[1]


@schemathesis.hook
def before_call(ctx: Any, case: Any, **kwargs: Any) -> None:
    if is_positive(case):
        shape_positive_case(case)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    process = start_api(tmp_path_factory.mktemp("fuzz"), "--file", str(LATEST), "--no-access-log")
    yield process
    assert process.stop() == 0


def test_api_conforms_to_its_openapi_document(api: ApiProcess, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "integration.test_api_fuzz",
        "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]),
    }
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{api.base}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(EXAMPLES_PER_OPERATION),
        "--seed",
        SEED,
        "--continue-on-failure",
        "--no-color",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1200, check=False)
    output = result.stdout + result.stderr
    generated = re.search(r"(\d+) generated", output)
    assert generated, output[-3000:]
    summary = output.strip().splitlines()[-1]
    print(f"\nschemathesis: {generated.group(1)} cases generated (seed {SEED}); {summary}")
    assert result.returncode == 0, output[-6000:]
    assert api.process.poll() is None, "the server died under fuzzing"
    assert int(generated.group(1)) > 500
