"""The CRD's schema and CEL rules, as the real kube-apiserver enforces them.

The API server is the one enforcer of the MCPRegistry's validation: the CEL rules are generated from
the models into the CRD (``mcpreg_dev.crd``) and nothing in the operator re-implements them. Every
case here is submitted to the session's API server as a server-side dry run (``dryRun=All``: admitted
or refused, never stored) with strict field validation (what kubectl does by default). An accepted
case must also be readable by the operator's models, as the API server returns it (defaults filled
in); a refused one must carry the expected message. Every CEL rule of the CRD has at least one case
that it refuses and one that reaches it and passes.

That the CRD's own defaults satisfy its rules is checked by the API server too: it refuses a CRD
where they do not, and the session's ``crd`` fixture applies it.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client.rest import ApiException

from fixtures.kube import Kube
from mcpreg_operator.spec.identity import GROUP, MAX_API_REPLICAS, PLURAL, VERSION
from mcpreg_operator.spec.registry import MCPRegistry

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CRD_FILE = REPO / "crds" / "mcpregistries.mcpregistry.dev.yaml"
EXAMPLES = REPO / "examples"

Obj = dict[str, Any]

GIT_SPEC: Obj = {
    "source": {"type": "git", "git": {"repository": "https://git.example.com/platform/mcp-registry.git"}}
}
CONFIGMAP_SPEC: Obj = {"source": {"type": "configmap", "configMap": {"name": "mcp-registry-data"}}}
URL_SPEC: Obj = {"source": {"type": "url", "url": {"url": "https://catalogue.example.com/registry.json"}}}
URL_GIT: Obj = {"repository": "https://git.example.com/platform/mcp-registry.git"}
API_SPEC: Obj = {"source": {"type": "api", "api": {"url": "https://registry.modelcontextprotocol.io"}}}
API = API_SPEC["source"]["api"]
S3: Obj = {"bucket": "mcp-registries"}


def registry(spec: Obj, name: str = "company-registry") -> Obj:
    return {
        "apiVersion": "mcpregistry.dev/v1alpha1",
        "kind": "MCPRegistry",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }


def with_(base: Obj, **paths: Any) -> Obj:
    """``base`` with dotted paths set (``source__git__branch="main"``); ``None`` deletes."""
    out = copy.deepcopy(base)
    for dotted, value in paths.items():
        *parents, last = dotted.split("__")
        node = out
        for key in parents:
            node = node.setdefault(key, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return out


# --- accepted -----------------------------------------------------------------------------------

GOOD: dict[str, Obj] = {
    "git-minimal": registry(GIT_SPEC),
    "configmap-minimal": registry(CONFIGMAP_SPEC),
    "design-example-git": registry(
        {
            "displayName": "Company MCP catalogue",
            "source": {
                "type": "git",
                "format": "auto",
                "git": {
                    "repository": "https://git.example.com/platform/mcp-registry.git",
                    "branch": "main",
                    "path": "registry.json",
                    "auth": {"secretRef": {"name": "registry-git-credentials"}},
                },
            },
            "syncPolicy": {"interval": "1h"},
            "filter": {
                "names": {"include": ["*"], "exclude": ["*-experimental"]},
                "tags": {"include": [], "exclude": ["deprecated"]},
            },
            "storage": {
                "type": "configmap",
                "s3": {
                    "bucket": "mcp-registries",
                    "region": "us-east-1",
                    "endpoint": "",
                    "prefix": "",
                    "forcePathStyle": False,
                    "credentialsSecretRef": {"name": "s3-creds"},
                    "serverSideEncryption": "",
                    "kmsKeyId": "",
                },
            },
            "api": {"enabled": True, "replicas": 1, "image": "", "resources": {}},
        }
    ),
    "design-example-configmap": registry(
        {
            "source": {
                "type": "configmap",
                "format": "toolhive",
                "configMap": {"name": "mcp-registry-data", "key": "registry.json"},
            }
        }
    ),
    "tag": registry(with_(GIT_SPEC, source__git__tag="v1.2.0")),
    "verify-head": registry(with_(GIT_SPEC, source__git__verify={"secretRef": {"name": "signers"}})),
    "verify-tag": registry(
        with_(
            GIT_SPEC,
            source__git__tag="v1.2.0",
            source__git__verify={"mode": "Tag", "secretRef": {"name": "s"}},
        )
    ),
    "commit-full": registry(with_(GIT_SPEC, source__git__commit="9f2c" * 10)),
    "commit-short": registry(with_(GIT_SPEC, source__git__commit="9f2c0ab")),
    "commit-upper": registry(with_(GIT_SPEC, source__git__commit="9F2C0AB")),
    "branch-with-slash": registry(with_(GIT_SPEC, source__git__branch="release/2026.1")),
    "http": registry(with_(GIT_SPEC, source__git__repository="http://127.0.0.1:8080/registry.git")),
    "git-daemon": registry(with_(GIT_SPEC, source__git__repository="git://localhost:9418/registry.git")),
    "ipv6": registry(with_(GIT_SPEC, source__git__repository="https://[::1]:8443/r.git")),
    "host-only": registry(with_(GIT_SPEC, source__git__repository="https://git.example.com")),
    "nested-path": registry(with_(GIT_SPEC, source__git__path="catalogue/prod/registry.json")),
    "dots-in-name": registry(with_(GIT_SPEC, source__git__path="a..b/.hidden/c..json")),
    "path-with-space": registry(with_(GIT_SPEC, source__git__path="my catalogue.json")),
    "cors-origins": registry(
        with_(GIT_SPEC, api__cors__allowedOrigins=["https://vscode.dev", "http://localhost:3000"])
    ),
    "cors-credentials": registry(
        with_(GIT_SPEC, api__cors={"allowedOrigins": ["https://vscode.dev"], "allowCredentials": True})
    ),
    "cors-off": registry(with_(GIT_SPEC, api__cors__allowedOrigins=[])),
    "auth-kubernetes": registry(with_(GIT_SPEC, api__auth={"mode": "kubernetes"})),
    "auth-oidc": registry(
        with_(
            GIT_SPEC,
            api__auth={
                "mode": "oidc",
                "oidc": {
                    "issuer": "https://accounts.example.com",
                    "audience": "registry",
                    "requiredClaims": {"team": "platform"},
                },
            },
        )
    ),
    "auth-kubernetes-audience": registry(
        with_(
            GIT_SPEC,
            api__auth={
                "mode": "kubernetes",
                "kubernetes": {"audience": "https://r.example", "cacheTtlSeconds": 300},
            },
        )
    ),
    **{
        f"interval-{i}": registry(with_(GIT_SPEC, syncPolicy={"interval": i}))
        for i in ("30s", "5m", "1h30m", "1.5h", "0.5m", "30000ms", "8760h", "1h0m0s")
    },
    "sync-policy-empty": registry(with_(GIT_SPEC, syncPolicy={})),
    "s3": registry(with_(GIT_SPEC, storage={"type": "s3", "s3": S3})),
    "s3-full": registry(
        with_(
            GIT_SPEC,
            storage={
                "type": "s3",
                "s3": {
                    "bucket": "mcp.registries-1",
                    "region": "eu-west-3",
                    "endpoint": "http://127.0.0.1:9000",
                    "prefix": "team-a/registries",
                    "forcePathStyle": True,
                    "credentialsSecretRef": {"name": "s3-creds"},
                    "serverSideEncryption": "aws:kms",
                    "kmsKeyId": "arn:aws:kms:eu-west-3:111122223333:key/1234abcd",
                },
            },
        )
    ),
    "s3-aes": registry(
        with_(GIT_SPEC, storage={"type": "s3", "s3": {**S3, "serverSideEncryption": "AES256"}})
    ),
    "s3-endpoint-path": registry(
        with_(GIT_SPEC, storage={"type": "s3", "s3": {**S3, "endpoint": "https://s3.example.com/minio"}})
    ),
    "api-off": registry(with_(GIT_SPEC, api={"enabled": False, "replicas": 0})),
    "api-resources": registry(
        with_(
            GIT_SPEC,
            api={
                "replicas": 3,
                "image": "ghcr.io/example/mcp-registry:0.1.0@sha256:" + "a" * 64,
                "resources": {
                    "requests": {"cpu": "100m", "memory": "64Mi"},
                    "limits": {"cpu": 1, "memory": "1.5Gi"},
                },
            },
        )
    ),
    "filters-max": registry(
        with_(GIT_SPEC, filter={"names": {"include": ["x"] * 100, "exclude": ["y" * 256]}, "tags": {}})
    ),
    "validation-reject": registry(with_(GIT_SPEC, validation={"onInvalidEntry": "Reject"})),
    "validation-bounds": registry(
        with_(GIT_SPEC, validation={"onInvalidEntry": "Skip", "maxSkippedPercent": 0})
    ),
    "validation-all": registry(with_(GIT_SPEC, validation={"maxSkippedPercent": 100})),
    # OpenAPI counts a whole float as an integer; the operator must read what the API server stored.
    "replicas-whole-float": registry(with_(GIT_SPEC, api={"replicas": 2.0})),
    "network-policy": registry(
        with_(
            GIT_SPEC,
            api__networkPolicy={
                "enabled": True,
                "allowedFrom": [
                    {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "agents"}}},
                    {
                        "namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "Exists"}]},
                        "podSelector": {
                            "matchExpressions": [{"key": "app", "operator": "In", "values": ["agent"]}]
                        },
                    },
                ],
                "ports": [8080, 9090],
            },
        )
    ),
    "url-minimal": registry(URL_SPEC),
    "url-full": registry(
        with_(
            URL_SPEC,
            source__url={
                "url": "http://127.0.0.1:8443/catalogues/registry.json?ref=main",
                "auth": {"secretRef": {"name": "catalogue-token"}},
                "caBundle": {"configMapRef": {"name": "internal-ca", "key": "ca.crt"}},
                "maxBytes": 1048576,
                "timeout": "2m",
                "redirects": "AnyHost",
                "verify": {
                    "secretRef": {"name": "catalogue-keys"},
                    "signatureUrl": "https://[::1]:8443/catalogues/registry.json.sig",
                },
            },
        )
    ),
    "url-ca-secret": registry(with_(URL_SPEC, source__url__caBundle={"secretRef": {"name": "ca"}})),
    "api-minimal": registry(API_SPEC),
    "api-full": registry(
        with_(
            API_SPEC,
            source__format="upstream",
            source__api={
                "url": "http://127.0.0.1:8080/mirror/v0.1",
                "versions": "all",
                "auth": {"secretRef": {"name": "registry-token"}},
                "caBundle": {"secretRef": {"name": "registry-ca", "key": "ca.pem"}},
                "maxPages": 50,
                "maxBytes": 1048576,
                "timeout": "30m",
                "fullResyncInterval": "24h",
                "redirects": "Refuse",
            },
        )
    ),
    "network-policy-own-namespace": registry(with_(GIT_SPEC, api__networkPolicy={"enabled": True})),
    "name-59": registry(GIT_SPEC, name="r" * 59),
    "name-with-digits": registry(GIT_SPEC, name="team-1-registry"),
}

# --- refused ------------------------------------------------------------------------------------

GIT = GIT_SPEC


def _set_repo(url: str) -> Obj:
    return registry(with_(GIT, source__git__repository=url))


def _pods_where(operator: str, values: list[str]) -> Obj:
    return {"podSelector": {"matchExpressions": [{"key": "app", "operator": operator, "values": values}]}}


# case -> (object, message both must contain, or None where an OpenAPI keyword refuses and the two
# sides word it differently)
# case -> (object, a fragment of the API server's message: the CEL rule's message, or None where an
# OpenAPI keyword (type, pattern, bound, enum, required, unknown field) refuses in its own words)
BAD: dict[str, tuple[Obj, str | None]] = {
    # source.type url: its field required, every other one forbidden, and git's and configMap's with it
    "url-without-url": (
        registry({"source": {"type": "url"}}),
        "source.url is required when source.type is url",
    ),
    "url-with-git": (
        registry(with_(URL_SPEC, source__git=URL_GIT)),
        "source.git must not be set when source.type is url",
    ),
    "url-with-configmap": (
        registry(with_(URL_SPEC, source__configMap={"name": "x"})),
        "source.configMap must not be set when source.type is url",
    ),
    "git-with-url": (
        registry(with_(GIT_SPEC, source__url=URL_SPEC["source"]["url"])),
        "source.url must not be set when source.type is git",
    ),
    "configmap-with-url": (
        registry(with_(CONFIGMAP_SPEC, source__url=URL_SPEC["source"]["url"])),
        "source.url must not be set when source.type is configmap",
    ),
    "url-ftp": (
        registry(with_(URL_SPEC, source__url__url="ftp://files.example.com/registry.json")),
        "url must be an https:// (or, where the operator allows it, http://) URL",
    ),
    "url-file": (registry(with_(URL_SPEC, source__url__url="file:///etc/passwd")), "url must be an https://"),
    "url-userinfo": (
        registry(with_(URL_SPEC, source__url__url="https://me:secret@catalogue.example.com/r.json")),
        "url must not contain credentials",
    ),
    "url-space": (
        registry(with_(URL_SPEC, source__url__url="https://catalogue.example.com/a b.json")),
        "url must be a URL with a host",
    ),
    "url-signature-scheme": (
        registry(
            with_(
                URL_SPEC,
                source__url__verify={"secretRef": {"name": "k"}, "signatureUrl": "s3://bucket/r.json.sig"},
            )
        ),
        "signatureUrl must be an https://",
    ),
    "url-signature-userinfo": (
        registry(
            with_(
                URL_SPEC,
                source__url__verify={"secretRef": {"name": "k"}, "signatureUrl": "https://u@h.example/r.sig"},
            )
        ),
        "signatureUrl must not contain credentials",
    ),
    "url-signature-shape": (
        registry(
            with_(
                URL_SPEC,
                source__url__verify={"secretRef": {"name": "k"}, "signatureUrl": "https://h.example/a\tb"},
            )
        ),
        "signatureUrl must be a URL with a host",
    ),
    "url-ca-both": (
        registry(
            with_(
                URL_SPEC,
                source__url__caBundle={"secretRef": {"name": "a"}, "configMapRef": {"name": "b"}},
            )
        ),
        "caBundle needs exactly one of secretRef and configMapRef",
    ),
    "url-ca-neither": (
        registry(with_(URL_SPEC, source__url__caBundle={})),
        "caBundle needs exactly one of secretRef and configMapRef",
    ),
    "url-timeout-long": (
        registry(with_(URL_SPEC, source__url__timeout="11m")),
        "timeout must be a Go duration from 1s to 10m",
    ),
    "url-timeout-word": (
        registry(with_(URL_SPEC, source__url__timeout="soon")),
        "timeout must be a Go duration from 1s to 10m",
    ),
    "url-max-bytes": (registry(with_(URL_SPEC, source__url__maxBytes=0)), None),
    # source.type api: its field required, every other one forbidden; its own fields
    "api-without-api": (
        registry({"source": {"type": "api"}}),
        "source.api is required when source.type is api",
    ),
    "api-with-url": (
        registry(with_(API_SPEC, source__url=URL_SPEC["source"]["url"])),
        "source.url must not be set when source.type is api",
    ),
    "api-with-git": (
        registry(with_(API_SPEC, source__git=URL_GIT)),
        "source.git must not be set when source.type is api",
    ),
    "api-with-configmap": (
        registry(with_(API_SPEC, source__configMap={"name": "x"})),
        "source.configMap must not be set when source.type is api",
    ),
    "url-with-api": (
        registry(with_(URL_SPEC, source__api=API)),
        "source.api must not be set when source.type is url",
    ),
    "git-with-api": (
        registry(with_(GIT_SPEC, source__api=API)),
        "source.api must not be set when source.type is git",
    ),
    "configmap-with-api": (
        registry(with_(CONFIGMAP_SPEC, source__api=API)),
        "source.api must not be set when source.type is configmap",
    ),
    "api-toolhive-format": (
        registry(with_(API_SPEC, source__format="toolhive")),
        "source.format must be auto or upstream when source.type is api",
    ),
    "api-url-scheme": (
        registry(with_(API_SPEC, source__api__url="ftp://registry.example.com")),
        "url must be an https://",
    ),
    "api-url-userinfo": (
        registry(with_(API_SPEC, source__api__url="https://me:secret@registry.example.com")),
        "url must not contain credentials",
    ),
    "api-url-space": (
        registry(with_(API_SPEC, source__api__url="https://registry.example.com/a b")),
        "url must be a URL with a host",
    ),
    "api-ca-neither": (
        registry(with_(API_SPEC, source__api__caBundle={})),
        "caBundle needs exactly one of secretRef and configMapRef",
    ),
    "api-timeout-long": (
        registry(with_(API_SPEC, source__api__timeout="31m")),
        "timeout must be a Go duration from 1s to 30m",
    ),
    "api-resync-short": (
        registry(with_(API_SPEC, source__api__fullResyncInterval="30s")),
        "fullResyncInterval must be a Go duration from 1m to 168h",
    ),
    "api-resync-word": (
        registry(with_(API_SPEC, source__api__fullResyncInterval="daily")),
        "fullResyncInterval must be a Go duration from 1m to 168h",
    ),
    "api-max-pages": (registry(with_(API_SPEC, source__api__maxPages=0)), None),
    "api-versions": (registry(with_(API_SPEC, source__api__versions="newest")), None),
    "url-redirects": (registry(with_(URL_SPEC, source__url__redirects="Sometimes")), None),
    # source sub-object matches source.type
    "git-without-git": (
        registry({"source": {"type": "git"}}),
        "source.git is required when source.type is git",
    ),
    "verify-tag-mode-without-tag": (
        registry(with_(GIT, source__git__verify={"mode": "TagAndHEAD", "secretRef": {"name": "s"}})),
        "verify.mode Tag and TagAndHEAD need tag",
    ),
    "verify-unknown-mode": (
        registry(with_(GIT, source__git__verify={"mode": "Commit", "secretRef": {"name": "s"}})),
        None,
    ),
    "verify-without-secret": (registry(with_(GIT, source__git__verify={"mode": "HEAD"})), None),
    "git-with-configmap": (
        registry(with_(GIT, source__configMap={"name": "x"})),
        "source.configMap must not be set when source.type is git",
    ),
    "design-example-literally": (
        # DESIGN.md lists git and configMap side by side for illustration; together they are refused.
        registry(
            with_(GOOD["design-example-git"]["spec"], source__configMap={"name": "d", "key": "registry.json"})
        ),
        "source.configMap must not be set when source.type is git",
    ),
    "configmap-without-configmap": (
        registry({"source": {"type": "configmap"}}),
        "source.configMap is required when source.type is configmap",
    ),
    "configmap-with-git": (
        registry(with_(CONFIGMAP_SPEC, source__git=GIT["source"]["git"])),
        "source.git must not be set when source.type is configmap",
    ),
    "unknown-source-type": (registry({"source": {"type": "url"}}), None),
    "unknown-format": (registry(with_(GIT, source__format="json")), None),
    "no-source": (registry({}), None),
    "no-repository": (registry({"source": {"type": "git", "git": {}}}), None),
    # at most one of branch/tag/commit
    "branch-and-tag": (
        registry(with_(GIT, source__git__branch="main", source__git__tag="v1")),
        "at most one of branch, tag and commit may be set",
    ),
    "branch-and-commit": (
        registry(with_(GIT, source__git__branch="main", source__git__commit="9f2c0ab")),
        "at most one of branch, tag and commit may be set",
    ),
    "all-three": (
        registry(with_(GIT, source__git__branch="m", source__git__tag="t", source__git__commit="9f2c0ab")),
        "at most one of branch, tag and commit may be set",
    ),
    # commit
    "commit-not-hex": (
        registry(with_(GIT, source__git__commit="xyz1234")),
        "commit must be a hexadecimal commit SHA of 7 to 40 characters",
    ),
    "commit-too-short": (registry(with_(GIT, source__git__commit="abc12")), None),
    "commit-too-long": (registry(with_(GIT, source__git__commit="a" * 41)), None),
    # refs
    "branch-option-injection": (
        registry(with_(GIT, source__git__branch="--upload-pack=touch /tmp/x")),
        None,  # the space trips the pattern too
    ),
    "branch-leading-dash": (
        registry(with_(GIT, source__git__branch="-main")),
        "must be a git ref name: it must not start with '-' or contain '..'",
    ),
    "tag-dot-dot": (
        registry(with_(GIT, source__git__tag="v1..v2")),
        "must be a git ref name: it must not start with '-' or contain '..'",
    ),
    "branch-empty": (registry(with_(GIT, source__git__branch="")), None),
    "branch-newline": (registry(with_(GIT, source__git__branch="main\n")), None),
    # interval
    **{
        f"interval-{label}": (
            registry(with_(GIT, syncPolicy={"interval": value})),
            "interval must be a Go duration such as 30s, 5m or 1h30m",
        )
        for label, value in {
            "words": "1 hour",
            "negative": "-5m",
            "bare-number": "300",
            "days": "1d",
            "micro-sign": "30000000µs",
            "leading-dot": ".5h",
            "trailing-newline": "5m\n",
        }.items()
    },
    "interval-empty": (registry(with_(GIT, syncPolicy={"interval": ""})), None),
    "interval-too-short": (
        registry(with_(GIT, syncPolicy={"interval": "10s"})),
        "interval must be at least 30s and at most 8760h",
    ),
    "interval-just-too-short": (
        registry(with_(GIT, syncPolicy={"interval": "29999ms"})),
        "interval must be at least 30s and at most 8760h",
    ),
    "interval-too-long": (
        registry(with_(GIT, syncPolicy={"interval": "8761h"})),
        "interval must be at least 30s and at most 8760h",
    ),
    # path
    "path-parent": (
        registry(with_(GIT, source__git__path="../secret")),
        "path must not contain '..' segments",
    ),
    "path-parent-inside": (
        registry(with_(GIT, source__git__path="a/../../b.json")),
        "path must not contain '..' segments",
    ),
    "path-dotdot": (registry(with_(GIT, source__git__path="..")), "path must not contain '..' segments"),
    "path-trailing-dotdot": (
        registry(with_(GIT, source__git__path="a/..")),
        "path must not contain '..' segments",
    ),
    "path-absolute": (
        registry(with_(GIT, source__git__path="/etc/passwd")),
        "path must be relative to the repository root (must not start with '/')",
    ),
    "path-empty": (registry(with_(GIT, source__git__path="")), None),
    "path-control-char": (registry(with_(GIT, source__git__path="a\nb")), None),
    # repository
    "repo-file": (
        _set_repo("file:///var/lib/registry.git"),
        "repository must be an https://, http:// or git:// URL",
    ),
    "repo-ssh": (
        _set_repo("ssh://git@git.example.com/r.git"),
        "repository must be an https://, http:// or git://",
    ),
    "repo-scp": (
        _set_repo("git@github.com:org/repo.git"),
        "repository must be an https://, http:// or git://",
    ),
    "repo-local-path": (
        _set_repo("/srv/git/registry.git"),
        "repository must be an https://, http:// or git://",
    ),
    "repo-upper-scheme": (_set_repo("HTTPS://git.example.com/r.git"), "repository must be an https://"),
    "repo-credentials": (
        _set_repo("https://bot:hunter2@git.example.com/r.git"),
        "repository must not contain credentials",
    ),
    "repo-token": (
        _set_repo("https://ghp_abc@github.com/org/r.git"),
        "repository must not contain credentials",
    ),
    "repo-no-host": (_set_repo("https://"), "repository must be a URL with a host"),
    "repo-no-host-path": (_set_repo("https:///r.git"), "repository must be a URL with a host"),
    "repo-space": (_set_repo("https://git.example.com/my repo.git"), "repository must be a URL with a host"),
    "repo-too-long": (_set_repo("https://git.example.com/" + "a" * 2048), None),
    # storage
    "s3-without-s3": (
        registry(with_(GIT, storage={"type": "s3"})),
        "storage.s3 is required when storage.type is s3",
    ),
    "s3-without-bucket": (registry(with_(GIT, storage={"type": "s3", "s3": {"region": "us-east-1"}})), None),
    "s3-bad-bucket": (
        registry(with_(GIT, storage={"type": "s3", "s3": {"bucket": "Bad_Bucket"}})),
        "bucket must be a valid S3 bucket name",
    ),
    "s3-bucket-trailing-dash": (
        registry(with_(GIT, storage={"type": "s3", "s3": {"bucket": "bucket-"}})),
        "bucket must be a valid S3 bucket name",
    ),
    "s3-kms-key-with-aes": (
        registry(
            with_(
                GIT, storage={"type": "s3", "s3": {**S3, "serverSideEncryption": "AES256", "kmsKeyId": "k"}}
            )
        ),
        "kmsKeyId may only be set when serverSideEncryption is aws:kms",
    ),
    "s3-kms-key-without-sse": (
        registry(with_(GIT, storage={"type": "s3", "s3": {**S3, "kmsKeyId": "k"}})),
        "kmsKeyId may only be set when serverSideEncryption is aws:kms",
    ),
    "s3-bad-sse": (
        registry(with_(GIT, storage={"type": "s3", "s3": {**S3, "serverSideEncryption": "aws:kms:dsse"}})),
        None,
    ),
    "s3-bad-endpoint": (
        registry(with_(GIT, storage={"type": "s3", "s3": {**S3, "endpoint": "ftp://minio:21"}})),
        "endpoint must be empty or an http:// or https:// URL",
    ),
    "s3-endpoint-no-scheme": (
        registry(with_(GIT, storage={"type": "s3", "s3": {**S3, "endpoint": "minio.storage:9000"}})),
        "endpoint must be empty or an http:// or https:// URL",
    ),
    **{
        f"s3-prefix-{label}": (
            registry(with_(GIT, storage={"type": "s3", "s3": {**S3, "prefix": prefix}})),
            message,
        )
        for label, prefix, message in (
            ("absolute", "/registries", "prefix must not start or end with '/' or contain '//'"),
            ("trailing-slash", "registries/", "prefix must not start or end with '/' or contain '//'"),
            ("double-slash", "a//b", "prefix must not start or end with '/' or contain '//'"),
            ("dotdot", "a/../b", "prefix must not contain '.' or '..' segments"),
            ("dot", "./a", "prefix must not contain '.' or '..' segments"),
            ("space", "my prefix", None),
        )
    },
    "s3-bad-region": (registry(with_(GIT, storage={"type": "s3", "s3": {**S3, "region": "US East"}})), None),
    "unknown-storage": (registry(with_(GIT, storage={"type": "gcs"})), None),
    # validation
    "validation-unknown-mode": (registry(with_(GIT, validation={"onInvalidEntry": "Ignore"})), None),
    "validation-lowercase-mode": (registry(with_(GIT, validation={"onInvalidEntry": "skip"})), None),
    "validation-percent-over": (registry(with_(GIT, validation={"maxSkippedPercent": 101})), None),
    "validation-percent-negative": (registry(with_(GIT, validation={"maxSkippedPercent": -1})), None),
    "validation-percent-string": (registry(with_(GIT, validation={"maxSkippedPercent": "50"})), None),
    "validation-percent-fraction": (registry(with_(GIT, validation={"maxSkippedPercent": 12.5})), None),
    # API workload
    "replicas-negative": (registry(with_(GIT, api={"replicas": -1})), None),
    "replicas-too-many": (registry(with_(GIT, api={"replicas": MAX_API_REPLICAS + 1})), None),
    "replicas-string": (registry(with_(GIT, api={"replicas": "2"})), None),
    "replicas-fraction": (registry(with_(GIT, api={"replicas": 1.5})), None),
    "replicas-bool": (registry(with_(GIT, api={"replicas": True})), None),
    # Whole, but beyond 2**53 - 1: the API server no longer takes it for an integer.
    "replicas-huge-float": (registry(with_(GIT, api={"replicas": 1.5e16})), None),
    "quantity-huge-float": (registry(with_(GIT, api={"resources": {"limits": {"cpu": -(2.0**53)}}})), None),
    "quantity-bool": (registry(with_(GIT, api={"resources": {"limits": {"cpu": True}}})), None),
    "enabled-string": (registry(with_(GIT, api={"enabled": "true"})), None),
    "force-path-style-int": (
        registry(with_(GIT, storage={"type": "s3", "s3": {**S3, "forcePathStyle": 1}})),
        None,
    ),
    "image-with-space": (registry(with_(GIT, api={"image": "my image"})), None),
    "resources-bad-quantity": (registry(with_(GIT, api={"resources": {"requests": {"cpu": "lots"}}})), None),
    "resources-float": (registry(with_(GIT, api={"resources": {"requests": {"cpu": 0.5}}})), None),
    "resources-unknown-field": (registry(with_(GIT, api={"resources": {"claims": []}})), None),
    # Kubernetes object names
    "secret-name-upper": (registry(with_(GIT, source__git__auth={"secretRef": {"name": "Creds"}})), None),
    "secret-name-underscore": (
        registry(with_(GIT, source__git__auth={"secretRef": {"name": "my_creds"}})),
        None,
    ),
    "auth-without-secret-ref": (registry(with_(GIT, source__git__auth={})), None),
    "configmap-name-upper": (registry(with_(CONFIGMAP_SPEC, source__configMap__name="Data")), None),
    "configmap-key-slash": (registry(with_(CONFIGMAP_SPEC, source__configMap__key="a/b.json")), None),
    "s3-creds-name": (
        registry(with_(GIT, storage={"type": "s3", "s3": {**S3, "credentialsSecretRef": {"name": "-x"}}})),
        None,
    ),
    # filter
    "filter-empty-glob": (registry(with_(GIT, filter={"names": {"include": [""]}})), None),
    "filter-too-many": (registry(with_(GIT, filter={"tags": {"exclude": ["x"] * 101}})), None),
    "filter-glob-too-long": (registry(with_(GIT, filter={"names": {"exclude": ["y" * 257]}})), None),
    "display-name-too-long": (registry(with_(GIT, displayName="x" * 257)), None),
    # api.cors
    "cors-credentials-any-origin": (
        registry(with_(GIT, api={"cors": {"allowCredentials": True}})),
        "allowCredentials needs an explicit list of allowedOrigins",
    ),
    "cors-any-among-others": (
        registry(with_(GIT, api={"cors": {"allowedOrigins": ["*", "https://vscode.dev"]}})),
        "'*' already allows every origin",
    ),
    "cors-origin-with-path": (
        registry(with_(GIT, api={"cors": {"allowedOrigins": ["https://vscode.dev/x"]}})),
        None,
    ),
    # api.networkPolicy
    "network-policy-empty-peer": (
        registry(with_(GIT, api={"networkPolicy": {"enabled": True, "allowedFrom": [{}]}})),
        "a peer needs a namespaceSelector, a podSelector or both",
    ),
    "network-policy-in-without-values": (
        registry(with_(GIT, api={"networkPolicy": {"allowedFrom": [_pods_where("In", [])]}})),
        "values must be non-empty for In and NotIn",
    ),
    "network-policy-exists-with-values": (
        registry(with_(GIT, api={"networkPolicy": {"allowedFrom": [_pods_where("Exists", ["x"])]}})),
        "values must be non-empty for In and NotIn",
    ),
    "network-policy-bad-label-key": (
        registry(
            with_(
                GIT, api={"networkPolicy": {"allowedFrom": [{"podSelector": {"matchLabels": {"a b": "c"}}}]}}
            )
        ),
        "matchLabels: every key must be a label key",
    ),
    "network-policy-bad-namespace-label-key": (
        registry(
            with_(
                GIT,
                api={"networkPolicy": {"allowedFrom": [{"namespaceSelector": {"matchLabels": {"-x": "c"}}}]}},
            )
        ),
        "matchLabels: every key must be a label key",
    ),
    "network-policy-namespaces-not-in-without-values": (
        registry(
            with_(
                GIT,
                api={
                    "networkPolicy": {
                        "allowedFrom": [
                            {"namespaceSelector": {"matchExpressions": [{"key": "t", "operator": "NotIn"}]}}
                        ]
                    }
                },
            )
        ),
        "values must be non-empty for In and NotIn",
    ),
    "network-policy-port-zero": (
        registry(with_(GIT, api={"networkPolicy": {"ports": [0]}})),
        None,
    ),
    # api.auth
    "auth-oidc-without-settings": (
        registry(with_(GIT, api={"auth": {"mode": "oidc"}})),
        "mode oidc needs oidc.issuer and oidc.audience",
    ),
    "auth-oidc-http-issuer": (
        registry(
            with_(
                GIT, api={"auth": {"mode": "oidc", "oidc": {"issuer": "http://i.example", "audience": "a"}}}
            )
        ),
        None,
    ),
    "auth-oidc-without-audience": (
        registry(with_(GIT, api={"auth": {"mode": "oidc", "oidc": {"issuer": "https://i.example"}}})),
        None,
    ),
    "auth-mode-unknown": (registry(with_(GIT, api={"auth": {"mode": "basic"}})), None),
    "auth-ttl-too-long": (registry(with_(GIT, api={"auth": {"kubernetes": {"cacheTtlSeconds": 301}}})), None),
    "auth-ttl-zero": (registry(with_(GIT, api={"auth": {"kubernetes": {"cacheTtlSeconds": 0}}})), None),
    "auth-audience-space": (registry(with_(GIT, api={"auth": {"kubernetes": {"audience": "a b"}}})), None),
    # metadata.name
    "name-leading-digit": (registry(GIT, name="1registry"), "metadata.name must be a DNS-1035 label"),
    "name-with-dot": (registry(GIT, name="team.registry"), "metadata.name must be a DNS-1035 label"),
    "name-60": (registry(GIT, name="r" * 60), "metadata.name must be a DNS-1035 label"),
    "name-trailing-dash": (registry(GIT, name="registry-"), "metadata.name must be a DNS-1035 label"),
}


# --- spec.sources: the same rules on every item, and exactly one of the two forms ------------------


def as_sources(obj: Obj, name: str = "platform") -> Obj:
    """``obj`` with its ``spec.source`` moved to the first item of ``spec.sources``, named ``name``."""
    out = copy.deepcopy(obj)
    spec = out["spec"]
    spec["sources"] = [{"name": name, **spec.pop("source")}]
    return out


# Every case of the one-source form again as an item of spec.sources: an item has the same rules.
GOOD.update(
    {f"sources-{case}": as_sources(obj) for case, obj in list(GOOD.items()) if "source" in obj["spec"]}
)
BAD.update(
    {
        f"sources-{case}": (as_sources(obj), fragment)
        for case, (obj, fragment) in list(BAD.items())
        if "source" in obj["spec"]
    }
)
SECOND_SOURCE: Obj = {"name": "team", **GIT_SPEC["source"]}
GOOD.update(
    {
        "sources-two-with-filters": registry(
            {
                "sources": [
                    {"name": "platform", **CONFIGMAP_SPEC["source"], "filter": {"tags": {"include": ["ok"]}}},
                    {**SECOND_SOURCE, "filter": {"names": {"exclude": ["*-experimental"]}}},
                ],
                "filter": {"tags": {"exclude": ["deprecated"]}},
            }
        ),
        "sources-sixteen": registry(
            {"sources": [{"name": f"s{i}", **CONFIGMAP_SPEC["source"]} for i in range(16)]}
        ),
    }
)
BAD.update(
    {
        "neither-source-nor-sources": (registry({}), "exactly one of source and sources must be set"),
        "both-source-and-sources": (
            registry({**GIT_SPEC, "sources": [SECOND_SOURCE]}),
            "exactly one of source and sources must be set",
        ),
        "sources-empty": (registry({"sources": []}), None),
        "sources-seventeen": (
            registry({"sources": [{"name": f"s{i}", **CONFIGMAP_SPEC["source"]} for i in range(17)]}),
            None,
        ),
        "sources-duplicate-name": (
            registry({"sources": [{**SECOND_SOURCE, "name": "a"}, {**SECOND_SOURCE, "name": "a"}]}),
            None,
        ),
        "sources-name-not-a-label": (registry({"sources": [{**SECOND_SOURCE, "name": "Team_A"}]}), None),
        "sources-without-name": (registry({"sources": [GIT_SPEC["source"]]}), None),
    }
)


# --- the API server's verdicts ------------------------------------------------------------------


def submit(kube: Kube, namespace: str, obj: Obj) -> Obj:
    """``obj`` created in ``namespace`` as a dry run: what the API server would store, or ApiException."""
    body = copy.deepcopy(obj)
    body["metadata"]["namespace"] = namespace
    admitted: Obj = kube.custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, body, dry_run="All", field_validation="Strict"
    )
    return admitted


def refusal(kube: Kube, namespace: str, obj: Obj) -> str | None:
    """The API server's message refusing ``obj``, or None when it admits it."""
    try:
        submit(kube, namespace, obj)
    except ApiException as exc:
        assert exc.status in (400, 422), exc  # 400: strict field validation; 422: schema and CEL
        message: str = json.loads(exc.body)["message"]
        return message
    return None


@pytest.mark.parametrize("case", sorted(GOOD))
def test_accepted(case: str, kube: Kube, namespace: str, crd: str) -> None:
    admitted = submit(kube, namespace, GOOD[case])
    assert admitted["metadata"]["name"] == GOOD[case]["metadata"]["name"]
    # The operator's models read whatever the API server admits, defaults filled in.
    MCPRegistry.model_validate(admitted)


@pytest.mark.parametrize("case", sorted(BAD))
def test_refused(case: str, kube: Kube, namespace: str, crd: str) -> None:
    obj, fragment = BAD[case]
    message = refusal(kube, namespace, obj)
    assert message is not None, f"the API server admits {case}"
    if fragment is not None:
        assert fragment in message, message


def _examples() -> list[str]:
    return sorted(p.name for p in EXAMPLES.glob("registry-*.yaml"))


@pytest.mark.parametrize("name", _examples())
def test_examples_are_admitted(name: str, kube: Kube, namespace: str, crd: str) -> None:
    documents = [d for d in yaml.safe_load_all((EXAMPLES / name).read_text(encoding="utf-8")) if d]
    [registry_obj] = [d for d in documents if d.get("kind") == "MCPRegistry"]
    MCPRegistry.model_validate(submit(kube, namespace, registry_obj))


# --- every CEL rule is exercised both ways --------------------------------------------------------


def _rules(schema: Obj, path: str = "") -> list[tuple[str, Obj]]:
    """(path of the schema node, rule) for every CEL rule of the CRD (``.spec.source.git.branch``)."""
    found = [(path, rule) for rule in schema.get("x-kubernetes-validations", [])]
    for name, sub in schema.get("properties", {}).items():
        found += _rules(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        found += _rules(schema["items"], f"{path}[]")
    return found


def _reaches(schema: Obj, obj: Any, path: str) -> bool:
    """Whether the API server evaluates the rules at ``path`` for ``obj``: the value is there, or
    defaults fill it in (``.spec.storage`` defaults to ``{}``); ``name[]`` is any item of a list."""
    names = [p for p in path.split(".") if p]
    if not names:
        return True
    first, rest = names[0], ".".join(names[1:])
    key, items = first.removesuffix("[]"), first.endswith("[]")
    node = schema.get("properties", {}).get(key, {})
    if isinstance(obj, dict) and key in obj:
        value = obj[key]
    elif "default" in node:
        value = node["default"]
    else:
        return False
    if not items:
        return _reaches(node, value, rest)
    return isinstance(value, list) and any(_reaches(node["items"], item, rest) for item in value)


def test_every_cel_rule_has_a_refused_and_an_accepted_case() -> None:
    crd = yaml.safe_load(CRD_FILE.read_text(encoding="utf-8"))
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    rules = _rules(schema)
    assert len(rules) >= 19
    for path, rule in rules:
        where = f"{path or '<root>'}: {rule['message']}"
        refused = [
            case
            for case, (obj, fragment) in BAD.items()
            if fragment is not None and fragment in rule["message"] and _reaches(schema, obj, path)
        ]
        assert refused, f"no refused case for {where}"
        accepted = [case for case, obj in GOOD.items() if _reaches(schema, obj, path)]
        assert accepted, f"no accepted case reaches {where}"
