"""Copy-paste install snippets for one server: `thv run`, a VS Code `mcp.json` entry, a Claude Desktop
`claude_desktop_config.json` entry.

Each snippet is plain text (the HTML layer escapes it). The JSON ones are complete documents a user can
paste into an empty file or merge into theirs. Required variables become VS Code inputs (secret ones
masked) and Claude Desktop placeholders; optional ones are listed on the page, not in the snippet.
How a package runs follows its registry type: OCI images with `docker run`, npm with `npx`, PyPI with
`uvx`; a remote server is reached by URL (Claude Desktop through `mcp-remote`, as it has no remote
entries of its own). A package of any other type gets the `thv run` snippet only.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Any

from mcpreg_api.page.facts import Package, Remote, ServerFacts, Variable


@dataclass(frozen=True, slots=True)
class Snippet:
    id: str  # stable, for the page's element ids and the tests
    label: str
    file_hint: str  # where it goes
    text: str


def snippets(facts: ServerFacts, registry_url: str) -> tuple[Snippet, ...]:
    found = [_thv(facts, registry_url)]
    launch = _launch(facts)
    if launch is not None:
        found.append(_vscode(facts, launch))
        found.append(_claude(facts, launch))
    return tuple(found)


def _thv(facts: ServerFacts, registry_url: str) -> Snippet:
    command = ["thv", "run"]
    for variable in _required(facts):
        if variable.secret:
            command += ["--secret", f"{_secret_name(variable)},target={variable.name}"]
        else:
            command += ["-e", f"{variable.name}=<{variable.name}>"]
    command.append(facts.key)
    text = (
        f"# once: use this registry\nthv config set-registry {shlex.quote(registry_url)} -p\n"
        + " ".join(shlex.quote(part) for part in command)
        + "\n"
    )
    return Snippet("thv", "ToolHive CLI", "a shell", text)


@dataclass(frozen=True, slots=True)
class _Launch:
    """How a client starts (or reaches) the server."""

    command: str | None = None
    args: tuple[str, ...] = ()
    remote: Remote | None = None
    variables: tuple[Variable, ...] = ()


def _launch(facts: ServerFacts) -> _Launch | None:
    for package in facts.packages:
        launch = _package_launch(package)
        if launch is not None:
            return launch
    for remote in facts.remotes:
        if remote.url:
            return _Launch(remote=remote, variables=tuple(h for h in remote.headers if h.required))
    return None


def _package_launch(package: Package) -> _Launch | None:
    required = tuple(v for v in package.variables if v.required)
    if package.transport != "stdio" or not package.identifier:
        return None
    if package.registry_type == "oci":
        passed = [arg for v in required for arg in ("-e", v.name)]
        return _Launch("docker", ("run", "-i", "--rm", *passed, package.identifier), variables=required)
    if package.registry_type == "npm":
        spec = package.identifier + (f"@{package.version}" if package.version else "")
        return _Launch("npx", ("-y", spec), variables=required)
    if package.registry_type == "pypi":
        spec = package.identifier + (f"=={package.version}" if package.version else "")
        return _Launch("uvx", (spec,), variables=required)
    return None


def _vscode(facts: ServerFacts, launch: _Launch) -> Snippet:
    entry: dict[str, Any]
    inputs = [
        {
            "type": "promptString",
            "id": variable.name,
            "description": variable.description or variable.name,
            "password": variable.secret,
        }
        for variable in launch.variables
    ]
    values = {v.name: f"${{input:{v.name}}}" for v in launch.variables}
    if launch.remote is not None:
        kind = "sse" if launch.remote.transport == "sse" else "http"
        entry = {"type": kind, "url": launch.remote.url}
        if values:
            entry["headers"] = values
    else:
        entry = {"type": "stdio", "command": launch.command, "args": list(launch.args)}
        if values:
            entry["env"] = values
    document: dict[str, Any] = {"servers": {facts.key: entry}}
    if inputs:
        document["inputs"] = inputs
    return Snippet("vscode", "VS Code", ".vscode/mcp.json", _json(document))


def _claude(facts: ServerFacts, launch: _Launch) -> Snippet:
    entry: dict[str, Any]
    if launch.remote is not None:
        args = ["-y", "mcp-remote", launch.remote.url]
        for variable in launch.variables:
            args += ["--header", f"{variable.name}: <{variable.name}>"]
        entry = {"command": "npx", "args": args}
    else:
        entry = {"command": launch.command, "args": list(launch.args)}
        if launch.variables:
            entry["env"] = {v.name: f"<{v.name}>" for v in launch.variables}
    document = {"mcpServers": {facts.key: entry}}
    return Snippet("claude", "Claude Desktop", "claude_desktop_config.json", _json(document))


def _required(facts: ServerFacts) -> tuple[Variable, ...]:
    return tuple(v for v in facts.variables if v.required)


def _secret_name(variable: Variable) -> str:
    return variable.name.lower().replace("_", "-")


def _json(document: Any) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
