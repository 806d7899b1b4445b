"""Conversion of single servers between ToolHive's format and upstream server.json.

ToolHive → upstream puts everything ToolHive's client reads where it reads it:
`_meta["io.modelcontextprotocol.registry/publisher-provided"]["io.github.stacklok"][<image or URL>]`
holds status, tier, tools, tags, metadata, permissions, provenance, args, docker_tags, proxy_port,
oauth_config, env_vars (remote) and custom_metadata; the image becomes an `oci` package (with the
transport, target port and environment variables), the URL a remote (with its headers).

Three ToolHive facts have no home in server.json: a description longer than upstream's 100
characters, the optional `name` field, and a target port on a stdio server. They travel under our own
publisher namespace (`dev.mcpregistry`), so ToolHive → upstream → ToolHive gives back exactly what it
was given.

Upstream → ToolHive follows the ToolHive client's reading: remotes make a remote server, a single
`oci` package makes a container server; anything else (npm-only, several images, no tools) cannot be
expressed in ToolHive's format and is reported as such - it stays available in the upstream view.

All functions here take and return plain JSON dicts that have already been validated, and they share
sub-objects with their input instead of copying them: catalogues can be large.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import ValidationError

from mcpreg.catalog.errors import issues_from_validation_error
from mcpreg.catalog.toolhive_models import (
    ENV_VAR_NAME_PATTERN,
    SERVER_NAME_PATTERN,
    ContainerServer,
    RemoteServer,
)
from mcpreg.catalog.upstream_models import (
    MCPREG_NAMESPACE,
    PUBLISHER_PROVIDED_KEY,
    SERVER_SCHEMA_URL,
    STACKLOK_NAMESPACE,
)
from mcpreg.catalog.versions import semver_from_tag

# ToolHive's client looks a short name up as `io.github.stacklok/<name>` first, so this namespace lets
# `thv run fetch` find a converted server by the name it had in the ToolHive catalogue.
DEFAULT_NAMESPACE = STACKLOK_NAMESPACE
# What ToolHive's own converter uses when an image tag is not a version ("latest", no tag).
FALLBACK_VERSION = "1.0.0"
UPSTREAM_DESCRIPTION_MAX = 100
UPSTREAM_TITLE_MAX = 100
UPSTREAM_NAME_MAX = 200

ServerKind = Literal["container", "remote"]

_CONTAINER_EXTENSION_FIELDS = (
    "status",
    "tier",
    "tools",
    "tags",
    "metadata",
    "permissions",
    "args",
    "provenance",
    "docker_tags",
    "proxy_port",
    "custom_metadata",
)
_REMOTE_EXTENSION_FIELDS = (
    "status",
    "tier",
    "tools",
    "tags",
    "metadata",
    "oauth_config",
    "env_vars",
    "custom_metadata",
)
_KNOWN_SOURCES = {
    "github.com": "github",
    "gitlab.com": "gitlab",
    "bitbucket.org": "bitbucket",
    "codeberg.org": "codeberg",
}
_SERVER_KEY = re.compile(SERVER_NAME_PATTERN)
_NOT_KEY_CHARS = re.compile(r"[^a-z0-9-]+")
_ENV_VAR_NAME = re.compile(ENV_VAR_NAME_PATTERN)
_DASHES = re.compile(r"-{2,}")


@dataclass(frozen=True, slots=True)
class ToolHiveForm:
    """A server as ToolHive's format holds it: which map it lives in, its key, and its JSON."""

    kind: ServerKind
    key: str
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class NotExpressible:
    """Why an upstream server has no ToolHive form."""

    reason: str


# --- ToolHive → upstream --------------------------------------------------------------------------------


def upstream_name(key: str, namespace: str = DEFAULT_NAMESPACE) -> str:
    """The reverse-DNS server.json name for a ToolHive server key."""
    return f"{namespace}/{key}"


def version_from_image(image: str) -> str:
    """The server version an image reference implies: its tag when that is a semantic version."""
    last_segment = image.rsplit("/", 1)[-1]
    if ":" not in last_segment:
        return FALLBACK_VERSION
    tag = last_segment.rsplit(":", 1)[1]
    return semver_from_tag(tag) or FALLBACK_VERSION


def repository_source(url: str) -> str:
    """server.json's `repository.source` (the hosting service) for a repository URL."""
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        host = ""
    host = host.removeprefix("www.")
    return _KNOWN_SOURCES.get(host, host or "unknown")


def toolhive_to_server_json(form: ToolHiveForm, namespace: str = DEFAULT_NAMESPACE) -> dict[str, Any]:
    """The server.json for one ToolHive server (container or remote)."""
    server = form.data
    description: str = server["description"]
    preserved: dict[str, Any] = {}
    if len(description) > UPSTREAM_DESCRIPTION_MAX:
        preserved["description"] = description
        description = description[: UPSTREAM_DESCRIPTION_MAX - 1].rstrip() + "…"
    if "name" in server:
        preserved["name"] = server["name"]

    result: dict[str, Any] = {
        "$schema": SERVER_SCHEMA_URL,
        "name": upstream_name(form.key, namespace),
        "description": description,
    }
    if len(form.key) <= UPSTREAM_TITLE_MAX:
        result["title"] = form.key
    repository_url = server.get("repository_url")
    if repository_url is not None:
        result["repository"] = {"url": repository_url, "source": repository_source(repository_url)}

    if form.kind == "container":
        image: str = server["image"]
        result["version"] = version_from_image(image)
        transport: dict[str, Any] = {"type": server["transport"]}
        target_port = server.get("target_port")
        if server["transport"] == "stdio":
            if target_port is not None:
                preserved["target_port"] = target_port
        else:
            # ToolHive's own convention: a container's HTTP endpoint as seen through its local proxy.
            transport["url"] = (
                "http://localhost" if target_port is None else f"http://localhost:{target_port}"
            )
        package: dict[str, Any] = {"registryType": "oci", "identifier": image, "transport": transport}
        env_vars = server.get("env_vars")
        if env_vars is not None:
            package["environmentVariables"] = [_env_var_to_key_value(var) for var in env_vars]
        result["packages"] = [package]
        identifier = image
        extension_fields: tuple[str, ...] = _CONTAINER_EXTENSION_FIELDS
    else:
        url: str = server["url"]
        result["version"] = FALLBACK_VERSION
        remote: dict[str, Any] = {"type": server["transport"], "url": url}
        headers = server.get("headers")
        if headers is not None:
            remote["headers"] = [_header_to_key_value(header) for header in headers]
        result["remotes"] = [remote]
        identifier = url
        extension_fields = _REMOTE_EXTENSION_FIELDS

    extensions = {field: server[field] for field in extension_fields if field in server}
    publisher_provided: dict[str, Any] = {STACKLOK_NAMESPACE: {identifier: extensions}}
    if preserved:
        publisher_provided[MCPREG_NAMESPACE] = preserved
    result["_meta"] = {PUBLISHER_PROVIDED_KEY: publisher_provided}
    return result


def _env_var_to_key_value(var: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": var["name"],
        "description": var["description"],
        "isRequired": var["required"],
    }
    if "secret" in var:
        out["isSecret"] = var["secret"]
    if "default" in var:
        out["default"] = var["default"]
    return out


def _header_to_key_value(header: Mapping[str, Any]) -> dict[str, Any]:
    out = _env_var_to_key_value(header)
    if "choices" in header:
        out["choices"] = header["choices"]
    return out


# --- upstream → ToolHive --------------------------------------------------------------------------------


def toolhive_key(name: str) -> str | None:
    """The ToolHive key for an upstream name: the part after the slash, made a valid key if it can be.

    `io.github.stacklok/fetch` → `fetch`; `com.example/Weather_API` → `weather-api`. None when nothing
    usable is left (ToolHive keys need at least three characters).
    """
    short = name.rsplit("/", 1)[-1]
    if _SERVER_KEY.match(short):
        return short
    slug = _DASHES.sub("-", _NOT_KEY_CHARS.sub("-", short.lower())).strip("-")
    return slug if _SERVER_KEY.match(slug) else None


def stacklok_extensions(server: Mapping[str, Any], identifier: str | None) -> Mapping[str, Any] | None:
    """ToolHive's extension block for a server: the one keyed by `identifier`, else the only one."""
    by_identifier = _publisher_namespace(server, STACKLOK_NAMESPACE)
    if not by_identifier:
        return None
    if identifier is not None:
        found = by_identifier.get(identifier)
        if isinstance(found, Mapping):
            return found
    if len(by_identifier) == 1:
        only = next(iter(by_identifier.values()))
        if isinstance(only, Mapping):
            return only
    return None


def _publisher_namespace(server: Mapping[str, Any], namespace: str) -> Mapping[str, Any] | None:
    meta = server.get("_meta")
    if not isinstance(meta, Mapping):
        return None
    provided = meta.get(PUBLISHER_PROVIDED_KEY)
    if not isinstance(provided, Mapping):
        return None
    block = provided.get(namespace)
    return block if isinstance(block, Mapping) else None


def server_json_to_toolhive(
    server: Mapping[str, Any], key: str, status_hint: str = "active"
) -> ToolHiveForm | NotExpressible:
    """The ToolHive form of a (validated) server.json, or why there is none.

    `status_hint` is the entry's registry status, used when the publisher extension gives none.
    """
    remotes = server.get("remotes") or []
    packages = server.get("packages") or []
    preserved = _publisher_namespace(server, MCPREG_NAMESPACE) or {}
    if remotes:
        remote = remotes[0]
        extensions = stacklok_extensions(server, remote["url"]) or {}
        data = _common_toolhive_fields(server, extensions, preserved, status_hint)
        data["url"] = remote["url"]
        data["transport"] = remote["type"]
        if "headers" in remote:
            data["headers"] = [_key_value_to_header(header) for header in remote["headers"]]
        for field in ("oauth_config", "env_vars"):
            if field in extensions:
                data[field] = extensions[field]
        return _checked("remote", key, data)

    oci = [package for package in packages if package.get("registryType") == "oci"]
    if len(oci) != 1:
        if not packages:
            return NotExpressible("has neither an OCI package nor a remote, which ToolHive needs")
        if not oci:
            found = ", ".join(sorted({str(package.get("registryType")) for package in packages}))
            return NotExpressible(f"has no OCI package (found {found}); ToolHive runs container images")
        return NotExpressible(f"has {len(oci)} OCI packages; ToolHive needs exactly one")
    package = oci[0]
    image: str = package["identifier"]
    extensions = stacklok_extensions(server, image) or {}
    data = _common_toolhive_fields(server, extensions, preserved, status_hint)
    data["image"] = image
    transport = package["transport"]
    data["transport"] = transport["type"]
    target_port = _port_of(transport.get("url")) if "url" in transport else preserved.get("target_port")
    if target_port is not None:
        data["target_port"] = target_port
    env_vars = [_key_value_to_env_var(var) for var in package.get("environmentVariables") or ()]
    env_vars += _env_vars_from_runtime_arguments(package.get("runtimeArguments") or ())
    if env_vars or "environmentVariables" in package:
        data["env_vars"] = env_vars
    arguments = _flatten_arguments(package.get("packageArguments") or [])
    if arguments:
        data["args"] = arguments
    elif "args" in extensions:
        data["args"] = extensions["args"]
    for field in ("provenance", "docker_tags", "proxy_port"):
        if field in extensions:
            data[field] = extensions[field]
    if "permissions" in extensions:
        # The publisher schema allows a profile `name`; ToolHive's registry format does not.
        data["permissions"] = {k: v for k, v in extensions["permissions"].items() if k != "name"}
    return _checked("container", key, data)


def _common_toolhive_fields(
    server: Mapping[str, Any],
    extensions: Mapping[str, Any],
    preserved: Mapping[str, Any],
    status_hint: str,
) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if "name" in preserved:
        data["name"] = preserved["name"]
    data["description"] = preserved.get("description", server["description"])
    data["tier"] = extensions.get("tier", "Community")
    status = extensions.get("status")
    if status is None:
        status = "deprecated" if status_hint == "deprecated" else "active"
    data["status"] = status[:1].upper() + status[1:]
    if "tools" in extensions:
        data["tools"] = extensions["tools"]
    if "metadata" in extensions:
        data["metadata"] = _toolhive_metadata(extensions["metadata"])
    repository = server.get("repository")
    if repository is not None:
        data["repository_url"] = repository["url"]
    for field in ("tags", "custom_metadata"):
        if field in extensions:
            data[field] = extensions[field]
    return data


def _toolhive_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    # The publisher schema writes counts as JSON numbers (12.0); ToolHive's format wants integers, and
    # it has no place for the Kubernetes block.
    out: dict[str, Any] = {}
    for field in ("stars", "pulls"):
        value = metadata.get(field)
        if value is not None:
            out[field] = int(value)
    if "last_updated" in metadata:
        out["last_updated"] = metadata["last_updated"]
    return out


def _key_value_to_env_var(var: Mapping[str, Any]) -> dict[str, Any]:
    return _key_value(var, "Environment variable", copied=("isSecret", "default"))


def _key_value_to_header(header: Mapping[str, Any]) -> dict[str, Any]:
    return _key_value(header, "HTTP header", copied=("isSecret", "default", "choices"))


def _key_value(item: Mapping[str, Any], what: str, *, copied: tuple[str, ...]) -> dict[str, Any]:
    """A server.json key-value input (an environment variable, a header) in ToolHive's form."""
    name: str = item["name"]
    out: dict[str, Any] = {
        "name": name,
        "description": _short_description(item.get("description"), f"{what} {name}"),
        "required": bool(item.get("isRequired", False)),
    }
    for source in copied:
        if source in item:
            out[_TOOLHIVE_KEY_VALUE_FIELDS.get(source, source)] = item[source]
    return out


_TOOLHIVE_KEY_VALUE_FIELDS = {"isSecret": "secret"}


def _env_vars_from_runtime_arguments(arguments: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Environment variables given Docker-style, as `-e KEY=value` / `--env KEY={var}` arguments.

    ToolHive's client reads these too: a literal value becomes the default, a `{var}` reference takes
    secrecy and default from the argument's variables.
    """
    found: list[dict[str, Any]] = []
    for argument in arguments:
        if argument.get("type") != "named" or argument.get("name") not in ("-e", "--env"):
            continue
        name, separator, value = str(argument.get("value") or "").partition("=")
        if not separator or not _ENV_VAR_NAME.match(name):
            continue
        var: dict[str, Any] = {
            "name": name,
            "description": _short_description(argument.get("description"), f"Environment variable {name}"),
            "required": bool(argument.get("isRequired", False)),
        }
        if len(value) > 2 and value.startswith("{") and value.endswith("}"):
            reference = (argument.get("variables") or {}).get(value[1:-1])
            if isinstance(reference, Mapping):
                if "isSecret" in reference:
                    var["secret"] = reference["isSecret"]
                if reference.get("default"):
                    var["default"] = reference["default"]
        else:
            var["default"] = value
        found.append(var)
    return found


def _short_description(text: str | None, fallback: str) -> str:
    # ToolHive wants 5-200 characters where server.json makes the description optional.
    if text is None or len(text) < 5:
        return fallback
    return text if len(text) <= 200 else text[:199].rstrip() + "…"


def _flatten_arguments(arguments: list[Mapping[str, Any]]) -> list[str]:
    # ToolHive's client reads structured arguments as a flat argv: a flag's name, then any value.
    flat: list[str] = []
    for argument in arguments:
        if argument.get("type") == "named" and argument.get("name"):
            flat.append(argument["name"])
        value = argument.get("value")
        if value:
            flat.append(value)
    return flat


def _port_of(url: str | None) -> int | None:
    if not url:
        return None
    try:
        return urlsplit(url).port
    except ValueError:
        return None


def _checked(kind: ServerKind, key: str, data: dict[str, Any]) -> ToolHiveForm | NotExpressible:
    model = ContainerServer if kind == "container" else RemoteServer
    try:
        model.model_validate(data)
    except ValidationError as exc:
        problems = issues_from_validation_error(exc, [], None)
        details = "; ".join(issue.render() for issue in problems[:3])
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        return NotExpressible(f"would not be a valid ToolHive {kind} server: {details}{more}")
    return ToolHiveForm(kind=kind, key=key, data=data)
