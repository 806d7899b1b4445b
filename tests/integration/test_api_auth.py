"""Auth mode kubernetes against the real kube-apiserver: `mcpreg serve` as a process, reviewing callers
with exactly the permissions the operator gives the API's ServiceAccount (its Role and the token-review
ClusterRoleBinding, built by `mcpreg_operator.workload`), and callers holding real ServiceAccount tokens
from the TokenRequest API.

Invalid tokens: the apiserver's shortest TokenRequest lifetime is 10 minutes, so an expired token is
not waited for; a token signed for another audience, a malformed token and the token of a deleted
ServiceAccount stand for the tokens the apiserver no longer accepts."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from fixtures.kube import Kube, wait_until
from fixtures.operator import Registries
from integration.test_api_server import LATEST, ApiProcess, needs_shared, start_api
from integration.test_operator_api import api_document, api_ready, make_registry
from mcpreg.apiconfig import (
    API_VERSION,
    CATALOG_GROUP,
    CATALOG_RESOURCE,
    CATALOG_SUBRESOURCE,
    CATALOG_VERB,
    KIND,
    default_audience,
)
from mcpreg_dev.gitserver import BareRepo, GitDaemonServer
from mcpreg_operator.workload import (
    TOKEN_REVIEW_CLUSTER_ROLE_ENV,
    Owner,
    api_name,
    build_role,
    build_token_review_binding,
    token_review_binding_name,
    token_review_cluster_role,
)

pytestmark = [pytest.mark.integration, needs_shared]

REGISTRY = "company"
CACHE_TTL = 1.0


@dataclass
class Guarded:
    api: ApiProcess
    namespace: str
    audience: str

    def read(self, token: str | None, path: str = "/v0.1/servers?limit=5") -> tuple[int, dict[str, str], Any]:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        status, response_headers, body = self.api.get(path, headers)
        return status, response_headers, json.loads(body) if body else None


def token(kube: Kube, namespace: str, account: str, audiences: list[str]) -> str:
    return kube.service_account_token(namespace, account, audiences=audiences, expiration_seconds=600)


def logged(guarded: Guarded, count: int) -> list[tuple[int, str | None]]:
    """(status, subject) of every read but the probes in the access log, once there are `count`
    (aiohttp writes a line once the response is out: a moment after the client has it)."""

    def lines() -> list[tuple[int, str | None]] | None:
        reads = [line for line in guarded.api.access_log() if line["path"] not in ("/health", "/readiness")]
        return [(line["status"], line.get("subject")) for line in reads] if len(reads) >= count else None

    found: list[tuple[int, str | None]] = wait_until(lines, timeout=10, what=f"{count} access-log lines")
    return found


def grant_reading(kube: Kube, namespace: str, account: str, registry: str = REGISTRY) -> None:
    """What docs/api-auth.md tells users to write: get on mcpregistries/catalog, by the registry's name."""
    name = f"read-{registry}-{account}"
    kube.apply(
        [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": name, "namespace": namespace},
                "rules": [
                    {
                        "apiGroups": [CATALOG_GROUP],
                        "resources": [f"{CATALOG_RESOURCE}/{CATALOG_SUBRESOURCE}"],
                        "resourceNames": [registry],
                        "verbs": [CATALOG_VERB],
                    }
                ],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": name, "namespace": namespace},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
            },
        ]
    )


@pytest.fixture
def guarded(kube: Kube, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Guarded]:
    # The chart's ClusterRole (templates/rbac.yaml), under a name of this test's own.
    cluster_role = f"{namespace}-api-token-review"
    monkeypatch.setenv(TOKEN_REVIEW_CLUSTER_ROLE_ENV, cluster_role)
    owner = Owner(REGISTRY, "00000000-0000-0000-0000-000000000000")
    role = build_role(owner, namespace, [], access_reviews=True)
    binding = build_token_review_binding(owner, namespace)
    for manifest in (role, binding):
        manifest["metadata"].pop("ownerReferences", None)  # no real owner here: nothing to collect
    api_account = api_name(REGISTRY)
    kube.apply(
        [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": cluster_role},
                "rules": [
                    {
                        "apiGroups": ["authentication.k8s.io"],
                        "resources": ["tokenreviews"],
                        "verbs": ["create"],
                    }
                ],
            },
            binding,
            role,
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": api_account, "namespace": namespace},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": api_account},
                "subjects": [{"kind": "ServiceAccount", "name": api_account, "namespace": namespace}],
            },
        ],
        namespace=namespace,
    )
    kubeconfig = kube.service_account_kubeconfig(namespace, api_account, tmp_path / "api.kubeconfig")
    audience = default_audience(namespace, REGISTRY)
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "registry": REGISTRY,
                "namespace": namespace,
                "storage": {"type": "file", "path": str(LATEST)},
                "auth": {
                    "mode": "kubernetes",
                    "kubernetes": {"audience": audience, "cacheTtlSeconds": CACHE_TTL},
                },
            }
        )
    )
    api = start_api(tmp_path, "--config", str(config), "--kubeconfig", str(kubeconfig))
    try:
        yield Guarded(api, namespace, audience)
    finally:
        api.stop()
        kube.rbac.delete_cluster_role_binding(binding["metadata"]["name"])
        kube.rbac.delete_cluster_role(cluster_role)


def test_a_bound_token_with_the_registrys_audience_reads(kube: Kube, guarded: Guarded, crd: str) -> None:
    grant_reading(kube, guarded.namespace, "agent")
    agent = token(kube, guarded.namespace, "agent", [guarded.audience])
    status, _, body = guarded.read(agent)
    assert status == 200, body
    assert len(body["servers"]) == 5
    assert guarded.read(agent, "/api/v1/registry")[0] == 200
    subject = f"system:serviceaccount:{guarded.namespace}:agent"
    assert logged(guarded, 2) == [(200, subject), (200, subject)]
    # The check docs/api-auth.md suggests asks what the API asks (kubectl needs the CRD to map the name).
    for account, answer in (("agent", "yes"), ("stranger", "no")):
        can_i = kube.kubectl(
            *("auth", "can-i", "get", f"mcpregistries.mcpregistry.dev/{REGISTRY}", "--subresource=catalog"),
            *("-n", guarded.namespace, f"--as=system:serviceaccount:{guarded.namespace}:{account}"),
            check=False,
        )
        assert can_i.stdout.strip() == answer, (can_i.stdout, can_i.stderr)


def test_a_caller_without_the_rolebinding_is_refused_403(kube: Kube, guarded: Guarded) -> None:
    grant_reading(kube, guarded.namespace, "other-reader", registry="another-registry")
    for account in ("stranger", "other-reader"):
        status, headers, body = guarded.read(token(kube, guarded.namespace, account, [guarded.audience]))
        assert status == 403, body
        assert headers["Content-Type"] == "application/problem+json"
        assert body["detail"] == (
            f"system:serviceaccount:{guarded.namespace}:{account} may not read this registry: "
            "it needs verb get on mcpregistries/catalog (mcpregistry.dev) "
            f"with resourceName {REGISTRY} in namespace {guarded.namespace}"
        )
    ns = guarded.namespace
    assert logged(guarded, 2) == [
        (403, f"system:serviceaccount:{ns}:stranger"),
        (403, f"system:serviceaccount:{ns}:other-reader"),
    ]


def test_removing_the_rolebinding_revokes_within_the_cache_ttl(kube: Kube, guarded: Guarded) -> None:
    grant_reading(kube, guarded.namespace, "agent")
    agent = token(kube, guarded.namespace, "agent", [guarded.audience])
    assert guarded.read(agent)[0] == 200
    kube.rbac.delete_namespaced_role_binding(f"read-{REGISTRY}-agent", guarded.namespace)
    time.sleep(CACHE_TTL + 0.2)
    deadline = time.monotonic() + 10  # RBAC's informer in the apiserver sees the deletion a moment later
    while (status := guarded.read(agent)[0]) == 200 and time.monotonic() < deadline:
        time.sleep(CACHE_TTL + 0.2)
    assert status == 403


def test_tokens_the_apiserver_does_not_accept_for_this_registry_are_401s(
    kube: Kube, guarded: Guarded
) -> None:
    grant_reading(kube, guarded.namespace, "agent")
    grant_reading(kube, guarded.namespace, "gone")
    gone = token(kube, guarded.namespace, "gone", [guarded.audience])
    kube.core.delete_namespaced_service_account("gone", guarded.namespace)
    refused = {
        # the apiserver's default audience (the token a pod gets to talk to Kubernetes itself)
        "kubernetes audience": token(kube, guarded.namespace, "agent", []),
        "another registry's audience": token(
            kube, guarded.namespace, "agent", [default_audience(guarded.namespace, "another-registry")]
        ),
        "malformed": "not-a-jwt",
        "tampered": token(kube, guarded.namespace, "agent", [guarded.audience])[:-4] + "AAAA",
        "deleted ServiceAccount": gone,
    }
    for what, bad in refused.items():
        status, headers, body = guarded.read(bad)
        assert status == 401, (what, body)
        assert headers["WWW-Authenticate"].startswith(
            f'Bearer realm="{guarded.audience}", error="invalid_token"'
        )
        assert body["status"] == 401
    status, headers, _ = guarded.read(None)
    assert (status, headers["WWW-Authenticate"]) == (401, f'Bearer realm="{guarded.audience}"')
    assert logged(guarded, len(refused) + 1) == [(401, None)] * (len(refused) + 1)


def test_health_readiness_and_metrics_need_no_token(guarded: Guarded) -> None:
    for path in ("/health", "/readiness", "/metrics"):
        assert guarded.api.get(path)[0] == 200, path


# --- through the operator -------------------------------------------------------------------------


def binding_of(kube: Kube, namespace: str, registry: str) -> Any:
    try:
        return kube.rbac.read_cluster_role_binding(token_review_binding_name(registry, namespace))
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def test_the_operator_gives_the_api_exactly_the_review_rights_and_takes_them_back(
    registries: Registries,
    kube: Kube,
    namespace: str,
    bare_repo: BareRepo,
    git_daemon: GitDaemonServer,
    tmp_path: Path,
) -> None:
    # The chart's ClusterRole, under the name the operator falls back to without the chart's setting.
    kube.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": token_review_cluster_role()},
            "rules": [
                {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]}
            ],
        }
    )
    make_registry(registries, bare_repo, git_daemon, "guarded", auth={"mode": "kubernetes"})
    registries.wait("guarded", api_ready, timeout=90, what="API Ready")
    document = api_document(kube, namespace, "guarded")
    audience = default_audience(namespace, "guarded")
    assert document["auth"]["mode"] == "kubernetes" and document["auth"]["kubernetes"]["audience"] == audience
    pod = kube.apps.read_namespaced_deployment("guarded-api", namespace).spec.template.spec
    assert pod.automount_service_account_token is True
    rules = kube.rbac.read_namespaced_role("guarded-api", namespace).rules
    assert [(r.api_groups, r.resources, r.verbs) for r in rules][1:] == [
        (["authorization.k8s.io"], ["localsubjectaccessreviews"], ["create"])
    ]
    binding = wait_until(
        lambda: binding_of(kube, namespace, "guarded"), timeout=30, what="the token-review binding"
    )
    assert binding.role_ref.name == token_review_cluster_role()
    assert [(s.kind, s.name, s.namespace) for s in binding.subjects] == [
        ("ServiceAccount", "guarded-api", namespace)
    ]

    # The API as its pod runs it: the operator's document, the pod's own ServiceAccount token.
    config = tmp_path / "config.json"
    config.write_text(json.dumps(document))
    kubeconfig = kube.service_account_kubeconfig(namespace, "guarded-api", tmp_path / "api.kubeconfig")
    api = start_api(tmp_path, "--config", str(config), "--kubeconfig", str(kubeconfig))
    try:
        grant_reading(kube, namespace, "agent", registry="guarded")
        reader = Guarded(api, namespace, audience)
        assert reader.read(token(kube, namespace, "agent", [audience]))[0] == 200
        assert reader.read(token(kube, namespace, "stranger", [audience]))[0] == 403
        assert reader.read(token(kube, namespace, "agent", []))[0] == 401
    finally:
        api.stop()

    registries.patch("guarded", {"spec": {"api": {"auth": {"mode": "anonymous"}}}})
    wait_until(lambda: binding_of(kube, namespace, "guarded") is None, timeout=30, what="binding removed")
    assert len(kube.rbac.read_namespaced_role("guarded-api", namespace).rules) == 1
    registries.patch("guarded", {"spec": {"api": {"auth": {"mode": "kubernetes"}}}})
    wait_until(lambda: binding_of(kube, namespace, "guarded"), timeout=30, what="binding restored")
    registries.delete("guarded")
    wait_until(
        lambda: binding_of(kube, namespace, "guarded") is None, timeout=60, what="binding removed on delete"
    )


# --- oidc: the kube-apiserver as the issuer ------------------------------------------------------

SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"  # the control plane's flag


@pytest.fixture
def issuer_discovery_open(kube: Kube, namespace: str) -> Iterator[None]:
    """Anyone may read the apiserver's issuer discovery (the documented opt-in: bind the
    system:service-account-issuer-discovery ClusterRole to system:unauthenticated)."""
    name = f"{namespace}-issuer-discovery"
    kube.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "system:service-account-issuer-discovery",
            },
            "subjects": [
                {"kind": "Group", "name": "system:unauthenticated", "apiGroup": "rbac.authorization.k8s.io"}
            ],
        }
    )
    try:
        yield
    finally:
        kube.rbac.delete_cluster_role_binding(name)


@pytest.mark.usefixtures("issuer_discovery_open")
def test_oidc_against_the_apiservers_service_account_issuer(
    kube: Kube, namespace: str, tmp_path: Path
) -> None:
    audience = f"https://registry.test/{namespace}/{REGISTRY}"
    agent = f"system:serviceaccount:{namespace}:agent"
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "storage": {"type": "file", "path": str(LATEST)},
                "auth": {
                    "mode": "oidc",
                    "oidc": {
                        "issuer": SERVICE_ACCOUNT_ISSUER,
                        "audience": audience,
                        # The issuer's name resolves only inside a cluster: its discovery at the apiserver.
                        "discoveryUrl": f"{kube.control_plane.server}/.well-known/openid-configuration",
                        "caBundle": kube.control_plane.ca_cert.read_text(),
                        "requiredClaims": {"sub": agent},
                    },
                },
            }
        )
    )
    api = start_api(tmp_path, "--config", str(config))
    try:
        guarded = Guarded(api, namespace, audience)
        status, _, metadata = guarded.read(None, "/.well-known/oauth-protected-resource")
        assert (status, metadata["authorization_servers"], metadata["resource"]) == (
            200,
            [SERVICE_ACCOUNT_ISSUER],
            audience,
        )
        status, headers, _ = guarded.read(None)
        assert status == 401
        assert (
            f'resource_metadata="{api.base}/.well-known/oauth-protected-resource"'
            in headers["WWW-Authenticate"]
        )
        status, _, body = guarded.read(token(kube, namespace, "agent", [audience]))
        assert status == 200, body
        status, _, body = guarded.read(token(kube, namespace, "stranger", [audience]))
        assert (status, body["detail"]) == (
            403,
            f"system:serviceaccount:{namespace}:stranger may not read this registry: "
            f"claim sub must be {agent!r}",
        )
        for bad in (
            token(kube, namespace, "agent", []),
            token(kube, namespace, "agent", [audience])[:-4] + "AAAA",
        ):
            status, headers, body = guarded.read(bad)
            assert status == 401, body
            assert 'error="invalid_token"' in headers["WWW-Authenticate"]
        assert logged(guarded, 6)[2:4] == [
            (200, agent),
            (403, f"system:serviceaccount:{namespace}:stranger"),
        ]
    finally:
        api.stop()
