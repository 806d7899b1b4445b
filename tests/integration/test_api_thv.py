"""ToolHive's own client, `thv` (built from Go modules, version pinned in tools/thv), against the registry
API: `thv config set-registry URL -p`, `thv registry list`, `thv search`, `thv registry info`.

Each test gives thv a fresh HOME and XDG directories, so the user's ToolHive configuration is never read
or changed. The access log proves the answers came from our server (thv also embeds a catalogue).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from integration.test_api_server import LATEST, ApiProcess, needs_shared, start_api
from mcpreg.catalog import parse_catalog
from mcpreg_dev.thv import ensure_thv, thv_config_env, thv_env

pytestmark = needs_shared


@pytest.fixture(scope="module")
def thv() -> Path:
    # Built from Go modules like the control plane; a failed build fails the test, never skips it.
    return ensure_thv()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    process = start_api(tmp_path_factory.mktemp("api"), "--file", str(LATEST))
    yield process
    assert process.stop() == 0


@pytest.fixture
def thv_home(tmp_path: Path, thv: Path, api: ApiProcess) -> Path:
    """A HOME where thv is configured to use our API."""
    home = tmp_path / "home"
    home.mkdir()
    result = run(thv, home, "config", "set-registry", api.base, "-p", config=True)
    assert result.returncode == 0, result.stderr
    config = (home / ".config" / "toolhive" / "config.yaml").read_text()
    assert f"registry_api_url: {api.base}" in config, config  # recognised as an API, not a JSON file
    return home


def run(thv: Path, home: Path, *args: str, config: bool = False) -> subprocess.CompletedProcess[str]:
    env = thv_config_env(home) if config else thv_env(home)
    return subprocess.run([str(thv), *args], env=env, cwd=home, capture_output=True, text=True, timeout=120)


def table_names(output: str) -> list[str]:
    lines = [line for line in output.splitlines() if line.strip()]
    header = next(i for i, line in enumerate(lines) if line.startswith("NAME"))
    return [line.split()[0] for line in lines[header + 1 :]]


def thv_requests(api: ApiProcess) -> list[dict[str, Any]]:
    return [line for line in api.access_log() if "toolhive" in line.get("user_agent", "").lower()]


def test_registry_list(thv: Path, thv_home: Path, api: ApiProcess) -> None:
    result = run(thv, thv_home, "registry", "list")
    assert result.returncode == 0, result.stderr
    names = table_names(result.stdout)
    catalog = parse_catalog(LATEST.read_bytes())
    assert sorted(names) == sorted(catalog.names())
    assert len(names) == 102
    paths = [(line["path"], line["query"]) for line in thv_requests(api)]
    assert any(path == "/v0.1/servers" and "limit=1" in query for path, query in paths)  # its validation walk
    assert all(line["status"] == 200 for line in thv_requests(api))


def test_search(thv: Path, thv_home: Path, api: ApiProcess) -> None:
    before = len(thv_requests(api))
    result = run(thv, thv_home, "search", "fetch")
    assert result.returncode == 0, result.stderr
    assert re.search(r"Found \d+ servers? matching query: fetch", result.stdout), result.stdout
    assert "io.github.stacklok/fetch" in table_names(result.stdout)
    # thv's CLI searches the catalogue it fetched from us (its API client's ?search= is covered by the
    # contract tests): the request log shows where the data came from.
    assert len(thv_requests(api)) > before


def test_registry_info(thv: Path, thv_home: Path) -> None:
    result = run(thv, thv_home, "registry", "info", "fetch")
    assert result.returncode == 0, result.stderr
    assert "Name: io.github.stacklok/fetch" in result.stdout
    assert "Image: ghcr.io/stackloklabs/gofetch/server:" in result.stdout
    assert "Tools:" in result.stdout and "- fetch" in result.stdout


def test_registry_info_remote_server(thv: Path, thv_home: Path) -> None:
    catalog = parse_catalog(LATEST.read_bytes())
    remote = next(e for e in catalog.latest_entries() if e.server.get("remotes"))
    result = run(thv, thv_home, "registry", "info", remote.name)
    assert result.returncode == 0, result.stderr
    assert f"Name: {remote.name}" in result.stdout
    assert "remote" in result.stdout.lower()


def test_unknown_server(thv: Path, thv_home: Path) -> None:
    result = run(thv, thv_home, "registry", "info", "no-such-server")
    assert result.returncode != 0
    assert "not found" in (result.stdout + result.stderr).lower()
