"""`spec.api.networkPolicy` against the real API server: the NetworkPolicy <name>-api is created with
the workload, owned and labelled like it, follows spec changes, is restored when deleted by hand, and
is removed when turned off (or with the whole API). kwok has no network plugin: nothing here shows
traffic being filtered, only that the policy a network plugin would enforce is the one asked for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from fixtures.kube import Kube, wait_until
from fixtures.operator import Registries
from mcpreg_dev.gitserver import BareRepo, GitDaemonServer

pytestmark = pytest.mark.integration

CATALOG = Path(__file__).resolve().parents[2] / "examples" / "sample-catalog" / "registry.json"
AGENTS = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "agents"}}}
CLIENTS = {"podSelector": {"matchExpressions": [{"key": "role", "operator": "In", "values": ["client"]}]}}


def read_policy(kube: Kube, namespace: str, name: str) -> client.V1NetworkPolicy | None:
    try:
        return client.NetworkingV1Api(kube.api_client).read_namespaced_network_policy(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def ingress_of(policy: client.V1NetworkPolicy | None) -> Any:
    assert policy is not None
    return client.ApiClient().sanitize_for_serialization(policy.spec.ingress)


def test_network_policy_follows_the_spec(
    registries: Registries, kube: Kube, namespace: str, bare_repo: BareRepo, git_daemon: GitDaemonServer
) -> None:
    bare_repo.commit({"registry.json": CATALOG.read_bytes()})
    spec = {
        "source": {"type": "git", "git": {"repository": git_daemon.url(bare_repo), "path": "registry.json"}},
        "api": {"networkPolicy": {"enabled": True, "allowedFrom": [AGENTS]}},
    }
    obj = registries.create("fenced", spec)
    wait_until(lambda: read_policy(kube, namespace, "fenced-api") is not None, timeout=60, what="policy")
    policy = read_policy(kube, namespace, "fenced-api")
    assert policy is not None
    [owner] = policy.metadata.owner_references
    assert (owner.kind, owner.name, owner.uid, owner.controller) == (
        "MCPRegistry",
        "fenced",
        obj["metadata"]["uid"],
        True,
    )
    # The policy is applied before the pods it protects: the Deployment follows it.
    deployment = wait_until(
        lambda: next(
            (
                d
                for d in kube.apps.list_namespaced_deployment(namespace).items
                if d.metadata.name == "fenced-api"
            ),
            None,
        ),
        timeout=30,
        what="the API Deployment after its policy",
    )
    assert policy.metadata.labels == deployment.metadata.labels
    assert policy.spec.pod_selector.match_labels == deployment.spec.selector.match_labels
    assert policy.spec.policy_types == ["Ingress"]
    assert ingress_of(policy) == [{"from": [AGENTS], "ports": [{"port": 8080, "protocol": "TCP"}]}]

    # Updated with the spec.
    registries.patch(
        "fenced",
        {"spec": {"api": {"networkPolicy": {"allowedFrom": [AGENTS, CLIENTS], "ports": [8080, 9090]}}}},
    )
    wait_until(
        lambda: ingress_of(read_policy(kube, namespace, "fenced-api"))[0]["from"] == [AGENTS, CLIENTS],
        timeout=30,
        what="peers updated",
    )
    assert ingress_of(read_policy(kube, namespace, "fenced-api"))[0]["ports"] == [
        {"port": 8080, "protocol": "TCP"},
        {"port": 9090, "protocol": "TCP"},
    ]

    # Deleted by hand: part of the workload, put back.
    client.NetworkingV1Api(kube.api_client).delete_namespaced_network_policy("fenced-api", namespace)
    wait_until(lambda: read_policy(kube, namespace, "fenced-api") is not None, timeout=30, what="restored")

    # Turned off: removed, the API stays.
    registries.patch("fenced", {"spec": {"api": {"networkPolicy": {"enabled": False}}}})
    wait_until(lambda: read_policy(kube, namespace, "fenced-api") is None, timeout=30, what="policy removed")
    kube.apps.read_namespaced_deployment("fenced-api", namespace)

    # On again, then the whole API off: removed with it.
    registries.patch("fenced", {"spec": {"api": {"networkPolicy": {"enabled": True}}}})
    wait_until(lambda: read_policy(kube, namespace, "fenced-api") is not None, timeout=30, what="policy back")
    assert ingress_of(read_policy(kube, namespace, "fenced-api"))[0]["from"] == [AGENTS, CLIENTS]
    registries.patch("fenced", {"spec": {"api": {"enabled": False}}})
    wait_until(
        lambda: read_policy(kube, namespace, "fenced-api") is None, timeout=30, what="removed with the API"
    )


def test_a_peer_selecting_nothing_is_refused_by_the_api_server(registries: Registries) -> None:
    spec = {
        "source": {"type": "git", "git": {"repository": "https://example.com/r.git"}},
        "api": {"networkPolicy": {"enabled": True, "allowedFrom": [{}]}},
    }
    with pytest.raises(ApiException) as refused:
        registries.create("nopeer", spec)
    assert refused.value.status == 422
    assert "a peer needs a namespaceSelector, a podSelector or both" in str(refused.value.body)
