"""Property tests: any valid ToolHive server survives ToolHive → upstream → ToolHive unchanged.

The strategies generate servers anywhere within the ToolHive schema (optional fields present or not,
explicit false/empty values, long descriptions, stdio servers with ports, odd Unicode), and every
generated value is checked against the real JSON Schemas on the way.
"""

from __future__ import annotations

import json
import string
from typing import Any

from catalog_testdata import Validate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcpreg.catalog import (
    ToolHiveForm,
    parse_catalog,
    server_json_to_toolhive,
    toolhive_key,
    toolhive_to_server_json,
)

_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# Any character that can be written as UTF-8 (no lone surrogates).
_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40)
_lower = string.ascii_lowercase + string.digits
server_keys = st.from_regex(r"\A[a-z0-9][a-z0-9-]{1,30}[a-z0-9]\Z")
_label = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?\Z")
hostnames = st.lists(_label, min_size=1, max_size=4).map(".".join)
_segment = st.from_regex(r"\A[a-z0-9]([a-z0-9._-]{0,10}[a-z0-9])?\Z")
_tags = st.one_of(
    st.from_regex(r"\A(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})(-rc\.[0-9])?\Z"),
    st.just("latest"),
    st.from_regex(r"\Av[0-9]\.[0-9]\.[0-9]\Z"),
    st.from_regex(r"\A[a-zA-Z0-9][a-zA-Z0-9._-]{0,15}\Z"),
)
images = st.builds(
    lambda registry, path, tag: "/".join([*registry, *path]) + (f":{tag}" if tag else ""),
    st.lists(st.sampled_from(["ghcr.io", "docker.io", "example.com:5000", "quay.io"]), max_size=1),
    st.lists(_segment, min_size=1, max_size=3),
    st.one_of(st.none(), _tags),
)
urls = st.builds(
    lambda scheme, host, path: f"{scheme}://{host}/{path}",
    st.sampled_from(["http", "https"]),
    hostnames,
    st.from_regex(r"\A[a-zA-Z0-9/_.-]{0,20}\Z"),
)
ports = st.integers(min_value=1, max_value=65535)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    _text,
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(_text, children, max_size=4)),
    max_leaves=12,
)
tool_names = st.lists(st.from_regex(r"\A[A-Za-z0-9_-]{1,20}\Z"), min_size=1, max_size=8, unique=True)
tag_lists = st.lists(
    st.from_regex(r"\A[a-z0-9][a-z0-9_-]{0,10}[a-z0-9]\Z"), min_size=1, max_size=5, unique=True
)
descriptions = st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=10, max_size=500)
short_descriptions = st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=5, max_size=200)
timestamps = st.sampled_from(
    ["2025-07-29T00:25:12Z", "2026-02-05T04:47:22.123Z", "2026-01-01T10:00:00+02:00"]
)

env_vars = st.fixed_dictionaries(
    {
        "name": st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,20}\Z"),
        "description": short_descriptions,
        "required": st.booleans(),
    },
    optional={"secret": st.booleans(), "default": _text},
)
headers = st.fixed_dictionaries(
    {
        "name": st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9-]{0,20}\Z"),
        "description": short_descriptions,
        "required": st.booleans(),
    },
    optional={
        "secret": st.booleans(),
        "default": _text,
        "choices": st.lists(_text, max_size=3, unique=True),
    },
)
metadata = st.fixed_dictionaries(
    {},
    optional={
        "last_updated": timestamps,
        "pulls": st.integers(0, 10**9),
        "stars": st.integers(0, 10**6),
    },
)
permissions = st.fixed_dictionaries(
    {},
    optional={
        "network": st.fixed_dictionaries(
            {},
            optional={
                "outbound": st.fixed_dictionaries(
                    {},
                    optional={
                        "allow_host": st.lists(
                            st.one_of(hostnames, hostnames.map(lambda h: "." + h)), max_size=3, unique=True
                        ),
                        "allow_port": st.lists(ports, max_size=3, unique=True),
                        "insecure_allow_all": st.booleans(),
                    },
                )
            },
        ),
        "read": st.lists(st.from_regex(r"\A(/[a-zA-Z0-9._-]{1,8}){1,3}/?\Z"), max_size=3, unique=True),
        "write": st.lists(st.from_regex(r"\A(/[a-zA-Z0-9._-]{1,8}){1,3}/?\Z"), max_size=3, unique=True),
        "privileged": st.booleans(),
    },
)
provenance = st.fixed_dictionaries(
    {},
    optional={
        "cert_issuer": urls,
        "repository_uri": urls,
        "repository_ref": _text,
        "runner_environment": st.sampled_from(["github-hosted", "self-hosted"]),
        "signer_identity": _text,
        "sigstore_url": hostnames,
        "attestation": st.fixed_dictionaries(
            {}, optional={"predicate_type": urls, "predicate": json_values.filter(lambda v: v is not None)}
        ),
    },
)
oauth_configs = st.fixed_dictionaries(
    {},
    optional={
        "issuer": urls,
        "authorize_url": urls,
        "token_url": urls,
        "client_id": _text,
        "scopes": st.lists(_text, max_size=3),
        "use_pkce": st.booleans(),
        "oauth_params": st.dictionaries(_text, _text, max_size=3),
        "callback_port": ports,
        "resource": _text,
    },
)
_common_optional: dict[str, st.SearchStrategy[Any]] = {
    "name": _text,
    "metadata": metadata,
    "repository_url": urls,
    "tags": tag_lists,
    "custom_metadata": st.dictionaries(_text, json_values, max_size=4),
}
_common_required: dict[str, st.SearchStrategy[Any]] = {
    "description": descriptions,
    "tier": st.sampled_from(["Official", "Community"]),
    "status": st.sampled_from(["Active", "Deprecated"]),
    "tools": tool_names,
}
container_servers = st.fixed_dictionaries(
    {**_common_required, "transport": st.sampled_from(["stdio", "sse", "streamable-http"]), "image": images},
    optional={
        **_common_optional,
        "target_port": ports,
        "proxy_port": ports,
        "args": st.lists(_text, max_size=4),
        "env_vars": st.lists(env_vars, max_size=4),
        "permissions": permissions,
        "provenance": provenance,
        "docker_tags": st.lists(_text, max_size=3, unique=True),
    },
)
remote_servers = st.fixed_dictionaries(
    {**_common_required, "transport": st.sampled_from(["sse", "streamable-http"]), "url": urls},
    optional={
        **_common_optional,
        "headers": st.lists(headers, max_size=3),
        "oauth_config": oauth_configs,
        "env_vars": st.lists(env_vars, max_size=3),
    },
)
namespaces = st.sampled_from(["io.github.stacklok", "com.example", "dev.acme-corp.mcp"])


def _registry(servers: dict[str, Any], remotes: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "1.0.0",
        "last_updated": "2026-01-01T00:00:00Z",
        "servers": servers,
        "remote_servers": remotes,
    }


def _check_one(
    kind: str,
    key: str,
    data: dict[str, Any],
    namespace: str,
    server_schema_problems: Validate,
    toolhive_schema_problems: Validate,
) -> None:
    section = "servers" if kind == "container" else "remote_servers"
    document = _registry({key: data} if kind == "container" else {}, {key: data} if kind == "remote" else {})
    # The generated server is valid ToolHive, by the real schema and by the model.
    assert toolhive_schema_problems(document) == []
    parse_catalog(json.dumps(document).encode())

    form = ToolHiveForm(kind=kind, key=key, data=data)  # type: ignore[arg-type]
    upstream = toolhive_to_server_json(form, namespace)
    assert server_schema_problems(upstream) == []
    back_key = toolhive_key(upstream["name"])
    assert back_key == key
    back = server_json_to_toolhive(json.loads(json.dumps(upstream)), back_key)
    assert isinstance(back, ToolHiveForm), back
    assert (back.kind, back.key) == (kind, key)
    assert back.data == data
    assert (
        toolhive_schema_problems(
            _registry(*(({key: back.data}, {}) if kind == "container" else ({}, {key: back.data})))
        )
        == []
    )
    assert section  # both maps exercised across examples


@_SETTINGS
@given(key=server_keys, data=container_servers, namespace=namespaces)
def test_container_round_trip_keeps_every_field(
    key: str,
    data: dict[str, Any],
    namespace: str,
    server_schema_problems: Validate,
    toolhive_schema_problems: Validate,
) -> None:
    _check_one("container", key, data, namespace, server_schema_problems, toolhive_schema_problems)


@_SETTINGS
@given(key=server_keys, data=remote_servers, namespace=namespaces)
def test_remote_round_trip_keeps_every_field(
    key: str,
    data: dict[str, Any],
    namespace: str,
    server_schema_problems: Validate,
    toolhive_schema_problems: Validate,
) -> None:
    _check_one("remote", key, data, namespace, server_schema_problems, toolhive_schema_problems)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    containers=st.dictionaries(server_keys, container_servers, max_size=5),
    remotes=st.dictionaries(server_keys, remote_servers, max_size=5),
)
def test_whole_catalogue_round_trip_through_stored_form(
    containers: dict[str, Any],
    remotes: dict[str, Any],
    toolhive_schema_problems: Validate,
) -> None:
    remotes = {key: value for key, value in remotes.items() if key not in containers}
    document = _registry(containers, remotes)
    catalog = parse_catalog(json.dumps(document).encode())
    stored = parse_catalog(catalog.canonical_json())
    assert stored.content_hash == catalog.content_hash
    view = stored.toolhive_view()
    assert view["servers"] == containers
    assert view["remote_servers"] == remotes
    assert toolhive_schema_problems(view) == []
