"""`ApiServerConfig`, the registry API's configuration document: defaults, the storage union, the wire
names, and errors that name the file and the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mcpreg.apiconfig import (
    API_VERSION,
    KIND,
    ApiConfigError,
    ApiServerConfig,
    ConfigMapStorageConfig,
    FileStorageConfig,
    S3StorageConfig,
    load_config,
    parse_config,
)

HEAD = {"apiVersion": API_VERSION, "kind": KIND}
S3_DOC: dict[str, Any] = {
    **HEAD,
    "registry": "company",
    "namespace": "team-a",
    "storage": {
        "type": "s3",
        "bucket": "mcp-registries",
        "prefix": "catalogues/prod",
        "endpoint": "http://minio.storage:9000",
        "region": "eu-west-1",
        "forcePathStyle": True,
        "pollIntervalSeconds": 2.5,
        "presign": {"enabled": True, "ttlSeconds": 120},
    },
    "http": {
        "host": "0.0.0.0",
        "port": 9090,
        "cacheMaxAgeSeconds": 5,
        "accessLog": {"enabled": False, "flushIntervalSeconds": 0},
        "limits": {"drainSeconds": 5, "maxHeaders": 32},
    },
    "logLevel": "DEBUG",
}


def error_of(data: Any) -> str:
    with pytest.raises(ApiConfigError) as raised:
        parse_config(data, "config.json")
    return str(raised.value)


def test_round_trip_keeps_every_field_in_wire_names() -> None:
    config = parse_config(S3_DOC, "config.json")
    document = config.document()
    assert parse_config(document, "again") == config
    assert parse_config(json.loads(json.dumps(document)), "as JSON") == config
    assert document["storage"]["forcePathStyle"] is True and document["http"]["limits"]["maxHeaders"] == 32
    assert document["http"]["limits"]["keepaliveTimeoutSeconds"] == 20.0  # defaults are spelled out
    assert "force_path_style" not in json.dumps(document)


def test_the_storage_union_is_chosen_by_type() -> None:
    s3 = parse_config(S3_DOC, "c").storage
    assert isinstance(s3, S3StorageConfig)
    assert (s3.poll_interval_seconds, s3.presign.enabled, s3.presign.ttl_seconds) == (2.5, True, 120)
    settings = s3.settings()
    assert (settings.bucket, settings.prefix, settings.endpoint, settings.region) == (
        "mcp-registries", "catalogues/prod", "http://minio.storage:9000", "eu-west-1",
    )  # fmt: skip
    assert settings.force_path_style
    cm = parse_config({**HEAD, "registry": "r", "namespace": "n", "storage": {"type": "configmap"}}, "c")
    assert isinstance(cm.storage, ConfigMapStorageConfig)
    file = parse_config({**HEAD, "storage": {"type": "file", "path": "/data/registry.json"}}, "c")
    assert isinstance(file.storage, FileStorageConfig) and file.storage.poll_interval_seconds == 1.0
    assert file.http.port == 8080 and file.http.access_log.enabled and file.log_level == "INFO"


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ({"cacheMaxAge": 3}, "config.json: cacheMaxAge: unknown field"),
        ({"http": {"cacheMaxAge": 3}}, "config.json: http.cacheMaxAge: unknown field"),
        ({"http": {"limits": {"drain": 1}}}, "config.json: http.limits.drain: unknown field"),
        (
            {"storage": {"type": "s3", "bucket": "b", "credentials": "x"}},
            "config.json: storage.credentials: unknown field of s3 storage",
        ),
        # A misspelt field is named first, before the required one it leaves missing.
        (
            {"storage": {"type": "s3", "bukket": "b"}},
            "config.json: storage.bukket: unknown field of s3 storage",
        ),
    ],
)
def test_an_unknown_field_is_refused_by_its_name(patch: dict[str, Any], expected: str) -> None:
    document = {**HEAD, "registry": "r", "namespace": "n", "storage": {"type": "configmap"}, **patch}
    assert error_of(document).startswith(expected)


def test_wrong_documents_name_the_field() -> None:
    assert error_of({**S3_DOC, "apiVersion": "v1"}).startswith("config.json: apiVersion: Input should be")
    assert error_of({**S3_DOC, "kind": "Pod"}).startswith("config.json: kind: Input should be")
    assert error_of({k: v for k, v in S3_DOC.items() if k != "kind"}) == "config.json: kind: Field required"
    assert error_of({**S3_DOC, "storage": {"type": "nfs"}}).startswith("config.json: storage: ")
    assert "'configmap', 's3', 'file'" in error_of({**S3_DOC, "storage": {"type": "nfs"}})
    assert error_of({**S3_DOC, "http": {"port": 70000}}).startswith("config.json: http.port: ")
    assert error_of({**S3_DOC, "storage": {"type": "s3", "bucket": "b", "prefix": "/x"}}) == (
        "config.json: storage: the S3 prefix must not start or end with '/' or contain '//'"
    )
    assert error_of({**HEAD, "storage": {"type": "configmap"}}) == (
        "config.json: registry and namespace are required with configmap storage"
    )


def test_load_config_reads_json_and_yaml(tmp_path: Path) -> None:
    as_json = tmp_path / "config.json"
    as_json.write_text(json.dumps(S3_DOC))
    as_yaml = tmp_path / "config.yaml"
    as_yaml.write_text(
        "apiVersion: mcpregistry.dev/v1alpha1\nkind: ApiServerConfig\n"
        "storage:\n  type: file\n  path: registry.json\nhttp:\n  cacheMaxAgeSeconds: 0\n"
    )
    assert load_config(as_json) == parse_config(S3_DOC, "x")
    assert load_config(as_yaml).http.cache_max_age_seconds == 0


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "cannot read it: No such file or directory"),
        ("{unclosed", "not JSON or YAML"),
        ("[1, 2]", "not an ApiServerConfig document"),
        ("", "not an ApiServerConfig document"),
    ],
)
def test_load_config_refuses_what_is_no_document(tmp_path: Path, content: str | None, expected: str) -> None:
    path = tmp_path / "config.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ApiConfigError) as raised:
        load_config(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: ") and expected in message and "\n" not in message


def test_the_model_is_the_servers_tunables() -> None:
    config = ApiServerConfig.model_validate({**HEAD, "storage": {"type": "file", "path": "f"}})
    assert config.http.data_cache_control == "public, max-age=30"
    with pytest.raises(ValueError, match="frozen"):
        config.http.port = 1  # type: ignore[misc]


def test_auth_is_anonymous_unless_configured() -> None:
    assert parse_config(S3_DOC, "c").auth.mode == "anonymous"


def test_kubernetes_auth_needs_its_audience_and_the_registry_it_guards() -> None:
    assert error_of({**S3_DOC, "auth": {"mode": "kubernetes"}}) == (
        "config.json: auth: mode kubernetes needs its settings in auth.kubernetes (the audience)"
    )
    file = {**HEAD, "storage": {"type": "file", "path": "/data/registry.json"}}
    assert error_of({**file, "auth": {"mode": "kubernetes", "kubernetes": {"audience": "a"}}}) == (
        "config.json: registry and namespace are required with auth mode kubernetes (RBAC names them)"
    )
    assert error_of({**S3_DOC, "auth": {"mode": "oauth"}}).startswith("config.json: auth.mode: ")
    assert error_of({**S3_DOC, "auth": {"mode": "kubernetes", "kubernetes": {"audience": ""}}}).startswith(
        "config.json: auth.kubernetes.audience: "
    )
