"""The operator's one rendering of an MCPRegistry spec into the API's configuration document."""

from __future__ import annotations

from typing import Any

from mcpreg.apiconfig import API_VERSION, KIND, parse_config
from mcpreg_operator.api_config import render_api_config
from mcpreg_operator.spec.registry import MCPRegistrySpec

SOURCE = {"type": "configmap", "configMap": {"name": "src"}}


def rendered(
    storage: dict[str, Any], api: dict[str, Any] | None = None, source: dict[str, Any] | None = None
) -> dict[str, Any]:
    spec = MCPRegistrySpec.model_validate({"source": source or SOURCE, "storage": storage, "api": api or {}})
    return render_api_config(
        "company", "team-a", spec.storage, source=spec.source, cors=spec.api.cors, auth=spec.api.auth
    ).document()


HTTP = {
    "host": "0.0.0.0",
    "port": 8080,
    "cacheMaxAgeSeconds": 30,
    "accessLog": {"enabled": True, "flushIntervalSeconds": 1.0},
    "limits": {
        "maxLineSize": 16384,
        "maxFieldSize": 8190,
        "maxHeaders": 64,
        "keepaliveTimeoutSeconds": 20.0,
        "shutdownTimeoutSeconds": 10.0,
        "drainSeconds": 5.0,
    },
    "cors": {"allowedOrigins": ["*"], "allowCredentials": False, "maxAgeSeconds": 600},
}


def test_configmap_storage() -> None:
    assert rendered({"type": "configmap"}) == {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "registry": "company",
        "namespace": "team-a",
        "storage": {"type": "configmap"},
        "source": {
            "type": "configmap",
            "repository": "",
            "ref": "",
            "path": "",
            "configMap": "src",
            "key": "registry.json",
        },
        "http": HTTP,
        "auth": {"mode": "anonymous", "kubernetes": None, "oidc": None},
        "logLevel": "INFO",
    }


def test_s3_storage_with_its_addressing_and_without_secrets() -> None:
    document = rendered(
        {
            "type": "s3",
            "s3": {
                "bucket": "mcp-registries",
                "prefix": "catalogues/prod",
                "endpoint": "https://s3.example.com:9000",
                "region": "eu-west-1",
                "forcePathStyle": True,
                "credentialsSecretRef": {"name": "s3-creds"},
                "serverSideEncryption": "aws:kms",
                "kmsKeyId": "arn:aws:kms:eu-west-1:1:key/k",
            },
        }
    )
    assert document["storage"] == {
        "type": "s3",
        "bucket": "mcp-registries",
        "prefix": "catalogues/prod",
        "endpoint": "https://s3.example.com:9000",
        "region": "eu-west-1",
        "forcePathStyle": True,
        "pollIntervalSeconds": 10.0,
        "presign": {"enabled": False, "ttlSeconds": 300},
    }
    # Reading needs neither the credentials' Secret (environment, by reference) nor the encryption.
    assert "s3-creds" not in str(document) and "kms" not in str(document).lower()
    assert parse_config(document, "rendered").document() == document


def test_s3_defaults() -> None:
    storage = rendered({"type": "s3", "s3": {"bucket": "mcp-registries"}})["storage"]
    assert (storage["prefix"], storage["endpoint"], storage["region"], storage["forcePathStyle"]) == (
        "", "", "", False,
    )  # fmt: skip


def test_s3_settings_ignored_unless_the_type_is_s3() -> None:
    stale = {"type": "configmap", "s3": {"bucket": "mcp-registries"}}
    assert rendered(stale)["storage"] == {"type": "configmap"}


def test_cors_settings_flow_from_the_spec() -> None:
    api = {"cors": {"allowedOrigins": ["https://vscode.dev"], "allowCredentials": True, "maxAgeSeconds": 60}}
    document = rendered({"type": "configmap"}, api)
    assert document["http"]["cors"] == {
        "allowedOrigins": ["https://vscode.dev"],
        "allowCredentials": True,
        "maxAgeSeconds": 60,
    }
    assert parse_config(document, "rendered").http.cors.allowed_origins == ("https://vscode.dev",)


def test_kubernetes_auth_names_a_registry_specific_audience_by_default() -> None:
    document = rendered({"type": "configmap"}, {"auth": {"mode": "kubernetes"}})
    assert document["auth"] == {
        "mode": "kubernetes",
        "kubernetes": {
            "audience": "mcpregistry.dev/team-a/company",
            "cacheTtlSeconds": 10.0,
            "cacheMaxEntries": 10000,
            "reviewTimeoutSeconds": 5.0,
        },
        "oidc": None,
    }
    assert parse_config(document, "rendered").auth.mode == "kubernetes"


def test_kubernetes_auth_settings_flow_from_the_spec() -> None:
    api = {
        "auth": {
            "mode": "kubernetes",
            "kubernetes": {"audience": "https://registry.example", "cacheTtlSeconds": 3},
        }
    }
    settings = rendered({"type": "configmap"}, api)["auth"]["kubernetes"]
    assert (settings["audience"], settings["cacheTtlSeconds"]) == ("https://registry.example", 3.0)


def test_kubernetes_settings_are_left_out_while_anonymous() -> None:
    api = {"auth": {"mode": "anonymous", "kubernetes": {"audience": "https://registry.example"}}}
    assert rendered({"type": "configmap"}, api)["auth"] == {
        "mode": "anonymous",
        "kubernetes": None,
        "oidc": None,
    }


def test_oidc_settings_flow_from_the_spec() -> None:
    oidc = {"issuer": "https://id.example", "audience": "registry", "requiredClaims": {"team": "a"}}
    document = rendered({"type": "configmap"}, {"auth": {"mode": "oidc", "oidc": oidc}})
    config = parse_config(document, "rendered").auth
    assert config.mode == "oidc" and config.oidc is not None
    assert (config.oidc.issuer, config.oidc.audience, config.oidc.required_claims) == (
        "https://id.example",
        "registry",
        {"team": "a"},
    )
    assert config.oidc.discovery == "https://id.example/.well-known/openid-configuration"
    assert config.realm == "registry"


def test_a_git_source_is_summarised_without_its_credentials() -> None:
    git = {
        "repository": "https://git.example.com/acme/catalogue.git",
        "tag": "v3",
        "path": "mcp/registry.json",
        "auth": {"secretRef": {"name": "git-token"}},
    }
    document = rendered({"type": "configmap"}, source={"type": "git", "git": git})
    assert document["source"] == {
        "type": "git",
        "repository": "https://git.example.com/acme/catalogue.git",
        "ref": "v3",
        "path": "mcp/registry.json",
        "configMap": "",
        "key": "",
    }
    assert "git-token" not in str(document)
    remote_head = {"type": "git", "git": {"repository": "https://git.example.com/a.git"}}
    assert rendered({"type": "configmap"}, source=remote_head)["source"]["ref"] == "HEAD"
