"""`mcpreg serve`: `--config FILE` and the convenience flags both come down to one `ApiServerConfig`,
handed to `run_config`; a bad document or flag is one line on stderr naming it, exit 2, no traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mcpreg.apiconfig import API_VERSION, KIND, ApiServerConfig, parse_config
from mcpreg_cli.main import main

DOCUMENT: dict[str, Any] = {
    "apiVersion": API_VERSION,
    "kind": KIND,
    "registry": "company",
    "namespace": "team-a",
    "storage": {
        "type": "s3",
        "bucket": "mcp-registries",
        "prefix": "cat",
        "endpoint": "http://127.0.0.1:9000",
        "region": "us-east-1",
        "forcePathStyle": True,
        "pollIntervalSeconds": 0.5,
        "presign": {"enabled": True, "ttlSeconds": 60},
    },
    "http": {"host": "0.0.0.0", "port": 8080, "cacheMaxAgeSeconds": 7, "limits": {"drainSeconds": 5}},
}


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[tuple[ApiServerConfig, str | None]]:
    """What `mcpreg serve` would run, instead of running it."""
    calls: list[tuple[ApiServerConfig, str | None]] = []

    def run_config(config: ApiServerConfig, *, kubeconfig: str | None = None) -> None:
        calls.append((config, kubeconfig))

    monkeypatch.setattr("mcpreg_api.launch.run_config", run_config)
    return calls


def write(tmp_path: Path, document: Any, name: str = "config.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return path


def test_config_file_is_what_runs(tmp_path: Path, started: list[tuple[ApiServerConfig, str | None]]) -> None:
    path = write(tmp_path, DOCUMENT)
    assert main(["serve", "--config", str(path)]) == 0
    assert started == [(parse_config(DOCUMENT, "expected"), None)]


def test_flags_override_the_document(
    tmp_path: Path, started: list[tuple[ApiServerConfig, str | None]]
) -> None:
    path = write(tmp_path, DOCUMENT)
    argv = ["serve", "--config", str(path), "--host", "127.0.0.1", "--port", "0", "--kubeconfig", "kc"]
    assert main(argv) == 0
    [(config, kubeconfig)] = started
    assert (config.http.host, config.http.port, kubeconfig) == ("127.0.0.1", 0, "kc")
    assert config.storage == parse_config(DOCUMENT, "expected").storage  # the rest as the document says


def test_flags_build_the_same_document(started: list[tuple[ApiServerConfig, str | None]]) -> None:
    argv = [
        "serve", "--registry", "company", "--namespace", "team-a", "--host", "0.0.0.0", "--port", "8080",
        "--s3-bucket", "mcp-registries", "--s3-prefix", "cat", "--s3-endpoint", "http://127.0.0.1:9000",
        "--s3-region", "us-east-1", "--s3-force-path-style", "--s3-poll-interval", "0.5",
        "--s3-presign", "--s3-presign-ttl", "60", "--cache-max-age", "7", "--drain-seconds", "5",
    ]  # fmt: skip
    assert main(argv) == 0
    assert started == [(parse_config(DOCUMENT, "expected"), None)]


def test_local_file_and_configmap_modes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, started: list[tuple[ApiServerConfig, str | None]]
) -> None:
    catalogue = tmp_path / "registry.json"
    catalogue.write_text("{}")
    assert main(["serve", "--file", str(catalogue), "--poll-interval", "0.1", "--no-access-log"]) == 0
    monkeypatch.setenv("POD_NAMESPACE", "from-env")
    assert main(["serve", "--registry", "company", "--log-level", "DEBUG"]) == 0
    (file_mode, _), (configmap_mode, _) = started
    assert file_mode.storage.type == "file" and file_mode.storage.poll_interval_seconds == 0.1
    assert file_mode.http.access_log.enabled is False and file_mode.http.port == 8080
    assert configmap_mode.storage.type == "configmap" and configmap_mode.namespace == "from-env"
    assert configmap_mode.log_level == "DEBUG" and configmap_mode.http.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["--file", "{catalogue}", "--port", "70000"],
            "error: --port: Input should be less than or equal to 65535",
        ),
        (
            ["--file", "{catalogue}", "--cache-max-age", "-1"],
            "error: --cache-max-age: Input should be greater",
        ),
        (["--file", "{catalogue}", "--s3-bucket", "b"], "error: --s3-bucket: unknown field of file storage"),
        (
            ["--registry", "r", "-n", "n", "--s3-prefix", "p"],
            "error: --s3-prefix: unknown field of configmap",
        ),
        (
            ["--registry", "r", "-n", "n", "--s3-bucket", "b", "--s3-prefix", "/p"],
            "error: {config}: storage: ",
        ),
        (["--file", "{tmp}/missing.json"], "error: {tmp}/missing.json: no such file"),
        (["--config", "{tmp}/missing.json"], "error: {tmp}/missing.json: cannot read it: No such file"),
    ],
)
def test_wrong_flags_are_one_line_naming_the_flag(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    started: list[tuple[ApiServerConfig, str | None]],
    argv: list[str],
    expected: str,
) -> None:
    catalogue = tmp_path / "registry.json"
    catalogue.write_text("{}")
    values = {"catalogue": str(catalogue), "tmp": str(tmp_path), "config": "the command line"}
    assert main(["serve", *(arg.format(**values) for arg in argv)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(expected.format(**values)) and err.count("\n") == 1, err
    assert started == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"http": {"cacheMaxAge": 7}}, "http.cacheMaxAge: unknown field"),
        ({"storage": {"type": "s3", "bukket": "b"}}, "storage.bukket: unknown field of s3 storage"),
        ({"apiVersion": "mcpregistry.dev/v1"}, "apiVersion: Input should be 'mcpregistry.dev/v1alpha1'"),
        ({"registry": ""}, "registry and namespace are required with s3 storage"),
    ],
)
def test_a_bad_document_is_one_line_naming_file_and_field(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    started: list[tuple[ApiServerConfig, str | None]],
    change: dict[str, Any],
    expected: str,
) -> None:
    path = write(tmp_path, {**DOCUMENT, **change})
    assert main(["serve", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: {expected}") and err.count("\n") == 1, err
    assert "Traceback" not in err and started == []


def test_one_source_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, DOCUMENT)
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--config", str(path), "--file", str(path)])
    assert exited.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
