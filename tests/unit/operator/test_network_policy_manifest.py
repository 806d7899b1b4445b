"""The API's optional NetworkPolicy (`spec.api.networkPolicy`): the manifest the operator applies."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from mcpreg_operator.spec.registry import MCPRegistrySpec
from mcpreg_operator.workload import Owner, build_manifests, selector

SPEC = {"source": {"type": "git", "git": {"repository": "https://example.com/r.git"}}}


def objects(network_policy: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    spec = {**SPEC, "api": {"networkPolicy": network_policy}} if network_policy is not None else SPEC
    built = build_manifests(
        owner=Owner(name="reg", uid="u-1"),
        namespace="ns",
        spec=MCPRegistrySpec.model_validate(spec),
        data_configmaps=["reg-data"],
    )
    return {m["kind"]: m for m in built}


def test_no_policy_unless_asked_for() -> None:
    assert "NetworkPolicy" not in objects(None)
    assert "NetworkPolicy" not in objects({"enabled": False, "ports": [9090]})


def test_enabled_alone_admits_the_registrys_own_namespace_on_the_api_port() -> None:
    built = objects({"enabled": True})
    policy = built["NetworkPolicy"]
    # Applied before the pods exist, so they never run unprotected.
    assert list(built).index("NetworkPolicy") < list(built).index("Deployment")
    assert policy["apiVersion"] == "networking.k8s.io/v1"
    assert policy["metadata"]["name"] == "reg-api"
    assert policy["metadata"]["namespace"] == "ns"
    assert policy["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert policy["metadata"]["labels"] == built["Deployment"]["metadata"]["labels"]
    assert policy["spec"] == {
        "podSelector": {"matchLabels": selector("reg")},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"podSelector": {}}], "ports": [{"protocol": "TCP", "port": 8080}]}],
    }
    # The policy selects exactly the API's pods.
    pod_labels = built["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()


def test_peers_and_ports_are_copied_as_kubernetes_reads_them() -> None:
    peers = [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "agents"}}},
        {"podSelector": {"matchExpressions": [{"key": "role", "operator": "In", "values": ["client"]}]}},
        {
            "namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "Exists"}]},
            "podSelector": {"matchLabels": {"app": "agent"}},
        },
    ]
    policy = objects({"enabled": True, "allowedFrom": peers, "ports": [9090, 8080, 8080]})["NetworkPolicy"]
    [rule] = policy["spec"]["ingress"]
    assert rule["from"] == peers
    assert rule["ports"] == [{"protocol": "TCP", "port": 8080}, {"protocol": "TCP", "port": 9090}]


@pytest.mark.parametrize(
    "network_policy",
    [
        {"enabled": "yes"},
        {"enabled": True, "ports": [0]},
        {"enabled": True, "ports": [70000]},
        {"enabled": True, "ports": ["8080"]},
        {"enabled": True, "allowedFrom": [{"podSelector": {"matchLabels": {"a": "not a label value"}}}]},
        {
            "enabled": True,
            "allowedFrom": [{"podSelector": {"matchExpressions": [{"key": "a", "operator": "Near"}]}}],
        },
    ],
)
def test_malformed_policies_are_refused(network_policy: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        MCPRegistrySpec.model_validate({**SPEC, "api": {"networkPolicy": network_policy}})
