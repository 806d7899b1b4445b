"""The CRD (schema + CEL rules) and the pydantic models accept and refuse the same MCPRegistries.

Every case goes through both: the admission stand-in in conftest.py (structural defaults, OpenAPI
schema with RE2 patterns, each CEL rule evaluated by cel-python) and ``MCPRegistry.model_validate``.
Where a CEL rule is what refuses, its message must also be what pydantic says.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import celpy  # noqa: F401  (a pinned test dependency: the CEL rules are evaluated for real)
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from mcpreg_operator import spec as s

Obj = dict[str, Any]

GIT_SPEC: Obj = {
    "source": {"type": "git", "git": {"repository": "https://git.example.com/platform/mcp-registry.git"}}
}
CONFIGMAP_SPEC: Obj = {"source": {"type": "configmap", "configMap": {"name": "mcp-registry-data"}}}
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


def pydantic_error(obj: Obj) -> str | None:
    try:
        s.MCPRegistry.model_validate(obj)
    except ValidationError as exc:
        return str(exc)
    return None


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
    # OpenAPI counts a whole float as an integer; the operator must read what the API server stored.
    "replicas-whole-float": registry(with_(GIT_SPEC, api={"replicas": 2.0})),
    "name-59": registry(GIT_SPEC, name="r" * 59),
    "name-with-digits": registry(GIT_SPEC, name="team-1-registry"),
}


@pytest.mark.parametrize("case", sorted(GOOD))
def test_good_registries_are_accepted_by_both(case: str, admission: Any) -> None:
    obj = GOOD[case]
    assert admission.errors(obj) == []
    assert pydantic_error(obj) is None


@pytest.mark.parametrize("case", sorted(GOOD))
def test_cel_rules_do_not_depend_on_defaults(case: str, admission: Any) -> None:
    # Objects stored before a default existed, or rules evaluated where defaults were not applied,
    # must not make a rule fail with "no such key": every optional field is guarded by has().
    assert admission.errors(GOOD[case], defaults=False) == []


# --- refused ------------------------------------------------------------------------------------

GIT = GIT_SPEC


def _set_repo(url: str) -> Obj:
    return registry(with_(GIT, source__git__repository=url))


# case -> (object, message both must contain, or None where an OpenAPI keyword refuses and the two
# sides word it differently)
BAD: dict[str, tuple[Obj, str | None]] = {
    # source sub-object matches source.type
    "git-without-git": (
        registry({"source": {"type": "git"}}),
        "source.git is required when source.type is git",
    ),
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
    # API workload
    "replicas-negative": (registry(with_(GIT, api={"replicas": -1})), None),
    "replicas-too-many": (registry(with_(GIT, api={"replicas": s.MAX_API_REPLICAS + 1})), None),
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
    # metadata.name
    "name-leading-digit": (registry(GIT, name="1registry"), "metadata.name must be a DNS-1035 label"),
    "name-with-dot": (registry(GIT, name="team.registry"), "metadata.name must be a DNS-1035 label"),
    "name-60": (registry(GIT, name="r" * 60), "metadata.name must be a DNS-1035 label"),
    "name-trailing-dash": (registry(GIT, name="registry-"), "metadata.name must be a DNS-1035 label"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_registries_are_refused_by_both(case: str, admission: Any) -> None:
    obj, message = BAD[case]
    errors = admission.errors(obj)
    refused = pydantic_error(obj)
    assert errors, f"the CRD accepts {case}"
    assert refused is not None, f"the pydantic model accepts {case}; the CRD says {errors}"
    if message is not None:
        assert any(message in e for e in errors), errors
        assert message in refused, refused


def test_every_cel_rule_is_exercised(admission: Any) -> None:
    """Each CEL rule refuses at least one BAD case, so none of them is dead or untested."""
    fired: set[str] = set()
    for obj, _ in BAD.values():
        fired.update(
            e.split(": ", 1)[1] for e in admission.cel_errors(admission.schema, admission.defaulted(obj))
        )
    messages = {rule["message"] for _, _, rule in admission.rules()}
    assert messages - {m.split(" (evaluation error")[0] for m in fired} == set()


def test_schema_defaults_pass_their_own_rules(admission: Any) -> None:
    # The API server validates each default value as written (nested defaults not applied) against
    # the rules of its node when the CRD is created, and refuses the CRD if one fails.
    for path, node in admission.nodes():
        if "default" in node:
            assert admission.cel_errors(node, copy.deepcopy(node["default"]), path) == [], path


def test_every_cel_rule_compiles(admission: Any) -> None:
    for path, _, rule in admission.rules():
        admission.program(rule["rule"])  # raises on a syntax error
        assert rule["message"] and "\n" not in rule["message"], path


def test_rules_evaluate_without_errors_on_good_values(admission: Any) -> None:
    # A rule that only "refuses" by crashing (no such key, bad overload) would give users an
    # unhelpful message; on good objects, every rule must evaluate to a clean true.
    for obj in GOOD.values():
        assert not [
            e for e in admission.cel_errors(admission.schema, admission.defaulted(obj)) if "evaluation" in e
        ]


# --- property-based parity for the string fields CEL rules look at ------------------------------


def _same_verdict(admission: Any, obj: Obj) -> None:
    errors = admission.errors(obj)
    refused = pydantic_error(obj)
    assert bool(errors) == (refused is not None), (obj, errors, refused)


_FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _fuzz(field_setter: Callable[[str], Obj], strategy: st.SearchStrategy[str]) -> Any:
    @_FUZZ
    @given(value=strategy)
    def check(admission: Any, value: str) -> None:
        _same_verdict(admission, field_setter(value))

    return check


test_path_parity = _fuzz(
    lambda v: registry(with_(GIT, source__git__path=v)), st.text(alphabet="./a\\ \n", max_size=10)
)
test_commit_parity = _fuzz(
    lambda v: registry(with_(GIT, source__git__commit=v)), st.text(alphabet="09afAFgx \n", max_size=44)
)
test_branch_parity = _fuzz(
    lambda v: registry(with_(GIT, source__git__branch=v)), st.text(alphabet="-.ma/~^: \n", max_size=8)
)
test_interval_parity = _fuzz(
    lambda v: registry(with_(GIT, syncPolicy={"interval": v})),
    st.one_of(
        # Well-formed durations near the bounds. Units and fraction digits are limited to what
        # cel-python's float arithmetic computes exactly (the API server uses integer nanoseconds).
        st.lists(
            st.tuples(
                st.integers(0, 9000),
                st.one_of(st.just(""), st.integers(0, 999).map(lambda f: f".{f}")),
                st.sampled_from(["h", "m", "s", "ms"]),
            ),
            min_size=1,
            max_size=3,
        ).map(lambda parts: "".join(f"{n}{f}{u}" for n, f, u in parts)),
        st.text(alphabet="0123456789.hmsnu- ", max_size=8),
    ),
)
test_repository_parity = _fuzz(
    lambda v: registry(with_(GIT, source__git__repository=v)),
    st.tuples(
        st.sampled_from(["https://", "http://", "git://", "file://", "ssh://", "HTTP://", "", "git@"]),
        st.text(alphabet="ab.:@[]-/ 1", max_size=12),
    ).map("".join),
)
test_s3_prefix_parity = _fuzz(
    lambda v: registry(with_(GIT, storage={"type": "s3", "s3": {**S3, "prefix": v}})),
    st.text(alphabet="a./-_ ", max_size=8),
)
test_s3_bucket_parity = _fuzz(
    lambda v: registry(with_(GIT, storage={"type": "s3", "s3": {"bucket": v}})),
    st.text(alphabet="ab1.-_A", min_size=0, max_size=66),
)
test_s3_endpoint_parity = _fuzz(
    lambda v: registry(with_(GIT, storage={"type": "s3", "s3": {**S3, "endpoint": v}})),
    st.tuples(
        st.sampled_from(["https://", "http://", "ftp://", ""]), st.text(alphabet="ab.:/@ 9", max_size=10)
    ).map("".join),
)
test_quantity_parity = _fuzz(
    lambda v: registry(with_(GIT, api={"resources": {"limits": {"cpu": v}}})),
    st.one_of(
        st.integers(-(2**60), 2**60),
        st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from([2.0, 2.0**53 - 1, 2.0**53, -(2.0**53)]),
        st.text(alphabet="0123456789.mMiKe+- ", max_size=6),
        st.booleans(),
    ),
)
test_replicas_parity = _fuzz(
    lambda v: registry(with_(GIT, api={"replicas": v})),
    st.one_of(st.integers(-3, 103), st.floats(-1, 101), st.text(max_size=2), st.booleans()),
)
test_registry_name_parity = _fuzz(
    lambda v: registry(GIT, name=v), st.text(alphabet="ar1-.A", min_size=1, max_size=62)
)
