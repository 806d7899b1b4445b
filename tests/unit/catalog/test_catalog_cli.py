"""`mcpreg validate` and `mcpreg convert`: exit codes, messages, output; never a traceback."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from catalog_testdata import REAL_FILES, TOOLHIVE_FILES, UPSTREAM_FILES, Validate, container, minimal_toolhive

from mcpreg_cli.main import main


def _write(tmp_path: Path, name: str, content: bytes | Any) -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
    return path


def test_validate_real_files(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", *map(str, REAL_FILES)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(REAL_FILES)
    assert all(": valid (" in line and "sha256:" in line for line in out)
    assert "toolhive format, 102 servers" in "".join(out)


def test_validate_quiet_prints_nothing_when_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "-q", str(REAL_FILES[0])]) == 0
    assert capsys.readouterr().out == ""


def test_validate_invalid_lists_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = _write(tmp_path, "bad.json", minimal_toolhive(fetch=container(transport="http", tools=[])))
    assert main(["validate", str(bad), str(REAL_FILES[0])]) == 1
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    # One line per problem, `FILE:LINE:COLUMN: severity: path: message`, as compilers write them.
    text = bad.read_text()
    transport, tools = text.index('"transport"') + 1, text.index('"tools"') + 1
    assert lines[:2] == [
        f"{bad}:1:{transport}: error: servers.fetch.transport: must be one of 'stdio', 'sse' or "
        "'streamable-http' (got 'http')",
        f"{bad}:1:{tools}: error: servers.fetch.tools: must have at least 1 item(s)",
    ]
    assert lines[2].startswith(f"{REAL_FILES[0]}: valid")
    assert f"{bad}: invalid (2 errors, 0 warnings)" in captured.err


def test_validate_unreadable_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.json"
    bad = _write(tmp_path, "bad.json", b"{")
    assert main(["validate", str(missing), str(bad)]) == 2
    captured = capsys.readouterr()
    assert f"{missing}: cannot read file: No such file or directory" in captured.err
    assert f"{bad}:1:2: error: (document): is not valid JSON" in captured.out


def test_validate_directory_is_unreadable_not_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(tmp_path)]) == 2
    assert "cannot read file: Is a directory" in capsys.readouterr().err


@pytest.mark.parametrize(
    "content",
    [
        b"\xff\xfe\x00garbage",
        b"not json at all",
        b"[" * 100_000,
        b'{"servers": [{"name": "x", "version_detail": {}}]}',
    ],
)
def test_validate_garbage_is_a_message_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    path = _write(tmp_path, "garbage.json", content)
    assert main(["validate", str(path)]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    assert captured.out.startswith(f"{path}:1:")
    assert ": error: " in captured.out


def test_validate_size_limit_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "big.json", minimal_toolhive(fetch=container()))
    assert main(["validate", "--max-bytes", "100", str(path)]) == 1
    assert "larger than the limit of 100 bytes" in capsys.readouterr().out


def test_validate_forced_format(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--format", "upstream", str(TOOLHIVE_FILES[0])]) == 1
    assert "expected the upstream server.json format" in capsys.readouterr().out


def test_validate_reads_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(json.dumps(minimal_toolhive(fetch=container())).encode()))
    monkeypatch.setattr(sys, "stdin", stdin)
    assert main(["validate", "-"]) == 0
    assert capsys.readouterr().out.startswith("-: valid (toolhive format, 1 server,")


def test_convert_toolhive_to_upstream(
    capsys: pytest.CaptureFixture[str], upstream_registry_schema_problems: Validate
) -> None:
    assert main(["convert", "--to", "upstream", str(TOOLHIVE_FILES[-1])]) == 0
    output = json.loads(capsys.readouterr().out)
    assert upstream_registry_schema_problems(output) == []
    assert output["data"]["servers"][0]["name"].startswith("io.github.stacklok/")


@pytest.mark.parametrize("shape", ["response", "list"])
def test_convert_upstream_shapes(capsys: pytest.CaptureFixture[str], shape: str) -> None:
    assert (
        main(
            [
                "convert",
                "--to",
                "upstream",
                "--shape",
                shape,
                "--namespace",
                "com.acme",
                str(TOOLHIVE_FILES[0]),
            ]
        )
        == 0
    )
    output = json.loads(capsys.readouterr().out)
    servers = output["servers"] if shape == "response" else output
    first = servers[0]["server"] if shape == "response" else servers[0]
    assert first["name"].startswith("com.acme/")


def test_convert_upstream_to_toolhive(
    capsys: pytest.CaptureFixture[str], toolhive_schema_problems: Validate
) -> None:
    assert main(["convert", "--to", "toolhive", str(UPSTREAM_FILES[0])]) == 0
    output = json.loads(capsys.readouterr().out)
    assert toolhive_schema_problems(output) == []
    assert "fetch" in output["servers"]


def test_convert_notes_entries_left_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    npm_only = {
        "name": "io.github.acme/npm-only",
        "description": "Only on npm",
        "version": "1.0.0",
        "packages": [{"registryType": "npm", "identifier": "@acme/x", "transport": {"type": "stdio"}}],
    }
    path = _write(tmp_path, "npm.json", [npm_only])
    assert main(["convert", "--to", "toolhive", str(path)]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["servers"] == {}
    assert (
        "note: io.github.acme/npm-only 1.0.0 left out of the ToolHive output: has no OCI package"
        in captured.err
    )


def test_convert_round_trip_via_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = TOOLHIVE_FILES[-1]
    assert main(["convert", "--to", "upstream", str(source)]) == 0
    upstream = _write(tmp_path, "upstream.json", capsys.readouterr().out.encode())
    assert main(["convert", "--to", "toolhive", str(upstream)]) == 0
    back = json.loads(capsys.readouterr().out)
    original = json.loads(source.read_bytes())
    assert back["servers"] == original["servers"]
    assert back["remote_servers"] == original["remote_servers"]


def test_convert_invalid_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = _write(tmp_path, "bad.json", minimal_toolhive(fetch=container(tier="x")))
    assert main(["convert", "--to", "upstream", str(bad)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "servers.fetch.tier: must be one of" in captured.err
    assert main(["convert", "--to", "upstream", str(tmp_path / "nope.json")]) == 2


def test_convert_requires_target(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["convert", str(TOOLHIVE_FILES[0])])
    assert exited.value.code == 2


def test_installed_entry_point_runs() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "mcpreg_cli.main", "validate", str(UPSTREAM_FILES[0])],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert ": valid (upstream format, 12 servers" in completed.stdout
