"""`mcpreg validate` with two severities: positions, exit codes, --strict, --output, pre-commit."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from catalog_testdata import REPO, container, minimal_toolhive

from mcpreg_cli.main import main


def _write(tmp_path: Path, name: str, document: Any) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document, indent=2))
    return path


def _position(path: Path, needle: str) -> tuple[int, int]:
    text = path.read_text()
    offset = text.index(needle)
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _legacy_only(tmp_path: Path) -> Path:
    """A catalogue whose only problems are legacy shapes: served, with warnings."""
    legacy = container(tools=["fetch", "fetch"])
    del legacy["tier"]
    return _write(tmp_path, "legacy.json", minimal_toolhive(fetch=legacy, time=container()))


def _broken(tmp_path: Path) -> Path:
    broken = container(
        env_vars=[
            {"name": "TOKEN", "description": "An access token", "required": True},
            {"name": "MODE", "description": "Which mode to run in", "required": "sometimes"},
        ]
    )
    legacy = container(colour="blue")
    return _write(tmp_path, "broken.json", minimal_toolhive(alpha=legacy, beta=broken))


def test_warnings_only_exit_0_with_each_warning_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _legacy_only(tmp_path)
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    line, column = _position(path, '"tools"')
    entry_line, entry_column = _position(path, '"fetch": {')
    assert out == [
        f"{path}:{entry_line}:{entry_column}: warning: servers.fetch.tier: is missing; defaulted to "
        "'Community'",
        f"{path}:{line}:{column}: warning: servers.fetch.tools: duplicate tool name(s) 'fetch' dropped",
        out[2],
    ]
    assert out[2].startswith(f"{path}: valid (toolhive format, 2 servers, 2 warnings, sha256:")


def test_strict_makes_warnings_fail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--strict", str(_legacy_only(tmp_path))]) == 1
    assert "warning: servers.fetch.tier" in capsys.readouterr().out


def test_errors_and_warnings_are_printed_distinctly_at_nested_positions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _broken(tmp_path)
    assert main(["validate", str(path)]) == 1
    captured = capsys.readouterr()
    required_line, required_column = _position(path, '"required": "sometimes"')
    colour_line, colour_column = _position(path, '"colour"')
    assert captured.out.splitlines() == [
        f"{path}:{required_line}:{required_column}: error: servers.beta.env_vars[1].required: "
        "must be true or false (got 'sometimes')",
        f"{path}:{colour_line}:{colour_column}: warning: servers.alpha.colour: not a field of ToolHive's "
        "format; ignored, as ToolHive's client ignores unknown fields",
    ]
    assert f"{path}: invalid (1 error, 1 warning)" in captured.err


def test_output_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken, legacy = _broken(tmp_path), _legacy_only(tmp_path)
    missing = tmp_path / "missing.json"
    assert main(["validate", "--output", "json", str(broken), str(legacy), str(missing)]) == 2
    document = json.loads(capsys.readouterr().out)
    assert document["errors"] == 1
    assert document["warnings"] == 3
    first, second, third = document["files"]
    assert first["status"] == "invalid"
    line, column = _position(broken, '"required": "sometimes"')
    assert first["errors"] == [
        {
            "severity": "error",
            "entry": "beta",
            "path": "servers.beta.env_vars[1].required",
            "message": "must be true or false (got 'sometimes')",
            "line": line,
            "column": column,
        }
    ]
    assert [w["path"] for w in first["warnings"]] == ["servers.alpha.colour"]
    assert second["status"] == "valid"
    assert second["servers"] == 2
    assert second["contentHash"].startswith("sha256:")
    assert [w["severity"] for w in second["warnings"]] == ["warning", "warning"]
    assert third["status"] == "unreadable"
    assert "No such file or directory" in third["message"]


def test_output_github_annotations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _broken(tmp_path)
    awkward = tmp_path / "a,b:c.json"  # commas and colons must be escaped in the file property
    awkward.write_bytes(path.read_bytes())
    assert main(["validate", "--output", "github", str(awkward)]) == 1
    out = capsys.readouterr().out.splitlines()
    escaped = str(awkward).replace(":", "%3A").replace(",", "%2C")
    line, column = _position(path, '"required": "sometimes"')
    assert out[0] == (
        f"::error file={escaped},line={line},col={column},title=mcpreg validate::"
        "servers.beta.env_vars[1].required: must be true or false (got 'sometimes')"
    )
    assert re.match(rf"::warning file={re.escape(escaped)},line=\d+,col=\d+,title=mcpreg validate::", out[1])
    assert len(out) == 2


def test_output_github_for_an_unreadable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--output", "github", str(tmp_path / "gone.json")]) == 2
    assert capsys.readouterr().out.startswith("::error file=")


def test_a_document_that_is_not_json_is_placed_where_the_decoder_stopped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cut.json"
    path.write_text('{\n  "version": "1.0.0",\n  "servers": {\n')
    assert main(["validate", str(path)]) == 1
    assert capsys.readouterr().out.startswith(f"{path}:4:1: error: (document): is not valid JSON")


# --- pre-commit ---------------------------------------------------------------------------------------


def _hook() -> dict[str, Any]:
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    (hook,) = hooks
    assert isinstance(hook, dict)
    return hook


def test_pre_commit_hook_is_declared() -> None:
    hook = _hook()
    assert hook["id"] == "mcpreg-validate"
    assert hook["language"] == "python"
    pyproject = (REPO / "pyproject.toml").read_text()
    command = shlex.split(hook["entry"])[0]
    assert re.search(rf'^{command} = "mcpreg_cli.main:main"$', pyproject, re.MULTILINE)


@pytest.mark.parametrize(
    ("name", "matched"),
    [
        ("registry.json", True),
        ("catalog/registry-2025-07-29.json", True),
        ("servers.json", True),
        ("catalogue.json", True),
        ("upstream/server.json", True),
        ("package.json", False),
        ("tsconfig.json", False),
        ("registry.yaml", False),
    ],
)
def test_pre_commit_hook_selects_catalogue_files(name: str, matched: bool) -> None:
    assert bool(re.search(_hook()["files"], name)) is matched


def test_pre_commit_hook_entry_runs_on_files(tmp_path: Path) -> None:
    # pre-commit runs `entry` with the staged file names appended.
    good, legacy, broken = (
        _write(tmp_path, "registry.json", minimal_toolhive(fetch=container())),
        _legacy_only(tmp_path),
        _broken(tmp_path),
    )
    entry = shlex.split(_hook()["entry"])
    executable = str(Path(sys.executable).with_name(entry[0]))

    def run(*files: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [executable, *entry[1:], *map(str, files)], capture_output=True, text=True, check=False
        )

    assert run(good).returncode == 0
    assert run(good).stdout == ""  # quiet: nothing to say about a valid file
    assert run(good, legacy).returncode == 0
    failed = run(good, broken)
    assert failed.returncode == 1
    assert "error: servers.beta.env_vars[1].required" in failed.stdout
