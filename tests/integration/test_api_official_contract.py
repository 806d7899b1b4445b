"""The official contract: schemathesis runs the official MCP registry's own OpenAPI document (fetched from
its pinned Go module, `mcpreg_dev.officialspec`) against a real `mcpreg serve` of a real catalogue, for
every GET operation that document defines. Every response is checked for 5xx, for headers and 200 bodies
the official document does not allow, for schema-valid requests refused and invalid ones accepted, and
for methods the document does not define answered as if they were.

Three checks are left out, each for a deviation listed in docs/api-contract.md: the official document
declares no 4xx/503 answers (we answer bad input with 400 and an unloaded catalogue with 503:
status_code_conformance), declares its 404 bodies application/json (ours are RFC 9457
application/problem+json: content_type_conformance), and declares PUT and DELETE that a read-only
registry does not answer (allow_header_conformance). The official document also sets no bounds on
`limit` (the official registry, like ours, takes 1 to 100), nor on `search` and `version` (ours refuse
control characters and more than 256 and 255 characters): schema-valid cases keep within them.
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
import yaml

from integration.api_cases import is_positive, shape_positive_case
from integration.test_api_server import LATEST, ApiProcess, needs_shared, start_api
from mcpreg_api.queries import MAX_SEARCH_LENGTH, MAX_VERSION_LENGTH
from mcpreg_dev.officialspec import ensure_official_openapi, official_version

pytestmark = needs_shared

EXAMPLES_PER_OPERATION = int(os.environ.get("MCPREG_CONTRACT_EXAMPLES", "100"))
SEED = os.environ.get("MCPREG_FUZZ_SEED", "20261202")
TESTS_DIR = Path(__file__).resolve().parents[1]
MAX_LIMIT = 100
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
EXCLUDED_CHECKS = "status_code_conformance,content_type_conformance,allow_header_conformance"


@schemathesis.hook
def before_call(ctx: Any, case: Any, **kwargs: Any) -> None:
    if not is_positive(case):
        return
    shape_positive_case(case)
    query = case.query
    limit = query.get("limit") if query else None
    if isinstance(limit, str) and limit.lstrip("-").isdigit():  # the coverage phase sends text
        limit = int(limit)
    if isinstance(limit, int):
        query["limit"] = min(max(limit, 1), MAX_LIMIT)
    for name, longest in (("search", MAX_SEARCH_LENGTH), ("version", MAX_VERSION_LENGTH)):
        text = query.get(name) if query else None
        if isinstance(text, str):
            query[name] = CONTROL.sub("", text)[:longest]


@pytest.fixture(scope="module")
def official_document() -> Path:
    return ensure_official_openapi()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    process = start_api(tmp_path_factory.mktemp("contract"), "--file", str(LATEST), "--no-access-log")
    yield process
    assert process.stop() == 0


def test_the_official_document_defines_the_read_operations(official_document: Path) -> None:
    paths = yaml.safe_load(official_document.read_text())["paths"]
    reads = sorted(path for path, item in paths.items() if "get" in item)
    assert reads == [
        "/v0.1/servers",
        "/v0.1/servers/{serverName}/versions",
        "/v0.1/servers/{serverName}/versions/{version}",
    ], f"the official document of {official_version()} changed its read operations: cover the new ones"


def test_api_conforms_to_the_official_openapi_document(
    api: ApiProcess, official_document: Path, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "integration.test_api_official_contract",
        "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]),
    }
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        str(official_document),
        "--url",
        api.base,
        "--include-method",
        "GET",
        "--checks",
        "all",
        "--exclude-checks",
        EXCLUDED_CHECKS,
        "--max-examples",
        str(EXAMPLES_PER_OPERATION),
        "--seed",
        SEED,
        "--continue-on-failure",
        "--no-color",
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)
    output = result.stdout + result.stderr
    generated = re.search(r"(\d+) generated", output)
    assert generated, output[-3000:]
    tested = re.search(r"Tested: (\d+)", output)
    summary = output.strip().splitlines()[-1]
    print(f"\nofficial contract {official_version()}: {generated.group(1)} cases (seed {SEED}); {summary}")
    assert tested and int(tested.group(1)) == 3, output[-3000:]  # every GET operation of the document
    assert result.returncode == 0, output[-6000:]
    assert api.process.poll() is None, "the server died under the contract run"
    assert int(generated.group(1)) > 200
