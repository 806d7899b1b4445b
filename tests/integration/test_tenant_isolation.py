"""Issue 17, part 6: a tenant - a ServiceAccount whose only rights are MCPRegistries, ConfigMaps and
Secrets in its own namespace - tries every way to make the operator read or write beyond that
namespace, and is refused each time, with what the tenant itself sees asserted: the API server's
admission error, or the MCPRegistry's status read with the tenant's own token.

The session's operator (cluster-wide, its own identity in its environment is none: S3 grants come only
from `MCPREG_S3_AMBIENT_BUCKETS`, unset here) and the session's git daemon; another namespace holds
the victim's ConfigMap and Secret."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from fixtures.kube import Kube, fresh_namespace
from fixtures.operator import OperatorProcess, Registries
from integration.test_git_hostile_repos import hostile_repo
from integration.test_git_source_errors import _blob, _commit_tree
from mcpreg_dev.gitserver import BareRepo, GitDaemonServer

pytestmark = pytest.mark.integration

CATALOGUE = json.dumps({"version": "1.0.0", "last_updated": "2026-01-01T00:00:00Z", "servers": {}})
VICTIM_CATALOGUE = json.dumps(
    {"version": "1.0.0", "last_updated": "2026-01-01T00:00:00Z", "servers": {}, "victim-only": True}
)
NO_API = {"api": {"enabled": False}}


@dataclass
class Tenant:
    namespace: str
    victim: str
    kube: Kube  # the tenant's own credentials
    registries: Registries  # ... creating and reading MCPRegistries with them

    def refused_at_admission(self, name: str, spec: dict[str, Any]) -> str:
        with pytest.raises(ApiException) as refused:
            self.registries.create(name, spec)
        assert refused.value.status == 422, refused.value.body
        return str(json.loads(refused.value.body)["message"])

    def refused_by_operator(self, name: str, spec: dict[str, Any], reason: str) -> dict[str, Any]:
        """The status the tenant reads once the operator refused; the refusal is in Ready or Synced."""
        self.registries.create(name, {**NO_API, **spec})

        def refused(status: dict[str, Any]) -> bool:
            return status.get("phase") == "Failed" and any(
                c.get("reason") == reason for c in status.get("conditions") or []
            )

        status = self.registries.wait(name, refused, timeout=60, what=f"refused with {reason}")["status"]
        assert isinstance(status, dict)
        return status


def tenant_role(namespace: str) -> client.V1Role:
    rule = client.V1PolicyRule
    return client.V1Role(
        metadata=client.V1ObjectMeta(name="tenant", namespace=namespace),
        rules=[
            rule(api_groups=["mcpregistry.dev"], resources=["mcpregistries"], verbs=["*"]),
            rule(api_groups=[""], resources=["configmaps", "secrets"], verbs=["*"]),
        ],
    )


@pytest.fixture
def tenant(kube: Kube, operator_process: OperatorProcess, tmp_path: Path) -> Iterator[Tenant]:
    with fresh_namespace(kube) as namespace, fresh_namespace(kube) as victim:
        kube.rbac.create_namespaced_role(namespace, tenant_role(namespace))
        kube.rbac.create_namespaced_role_binding(
            namespace,
            client.V1RoleBinding(
                metadata=client.V1ObjectMeta(name="tenant"),
                role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="tenant"),
                subjects=[client.RbacV1Subject(kind="ServiceAccount", name="tenant", namespace=namespace)],
            ),
        )
        # The victim's catalogue and credentials, which the tenant may not read.
        kube.core.create_namespaced_config_map(
            victim,
            client.V1ConfigMap(
                metadata=client.V1ObjectMeta(name="catalogue"), data={"registry.json": VICTIM_CATALOGUE}
            ),
        )
        kube.core.create_namespaced_secret(
            victim,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name="creds"),
                string_data={"AWS_ACCESS_KEY_ID": "victim-key", "AWS_SECRET_ACCESS_KEY": "victim-secret",
                             "username": "victim", "password": "victim-password"},
            ),
        )  # fmt: skip
        kubeconfig = kube.service_account_kubeconfig(namespace, "tenant", tmp_path / "tenant.kubeconfig")
        own = Kube(kube.control_plane, config.new_client_from_config(config_file=str(kubeconfig)))
        yield Tenant(
            namespace, victim, own, Registries(kube=own, namespace=namespace, operator=operator_process)
        )


def test_the_tenant_has_only_namespace_scoped_rights(tenant: Tenant) -> None:
    tenant.kube.core.list_namespaced_config_map(tenant.namespace)
    tenant.registries.kube.custom.list_namespaced_custom_object(
        "mcpregistry.dev", "v1alpha1", tenant.namespace, "mcpregistries"
    )
    for forbidden in (
        lambda: tenant.kube.core.read_namespaced_config_map("catalogue", tenant.victim),
        lambda: tenant.kube.core.read_namespaced_secret("creds", tenant.victim),
        lambda: tenant.kube.core.list_config_map_for_all_namespaces(),
    ):
        with pytest.raises(ApiException) as denied:
            forbidden()
        assert denied.value.status == 403


def test_another_namespaces_configmap_as_the_source(tenant: Tenant) -> None:
    source = {"type": "configmap", "configMap": {"name": "catalogue", "namespace": tenant.victim}}
    status = tenant.refused_by_operator("cm-ns", {"source": source}, "CrossNamespaceReference")
    assert "spec.source.configMap.namespace" in status["message"] and tenant.victim in status["message"]
    assert "syncStatus" not in status or not status["syncStatus"].get("serverCount")
    # A name cannot reach into another namespace either: admission refuses it.
    message = tenant.refused_at_admission(
        "cm-path", {"source": {"type": "configmap", "configMap": {"name": f"../{tenant.victim}/catalogue"}}}
    )
    assert "spec.source.configMap.name" in message
    message = tenant.refused_at_admission(
        "cm-ns-path",
        {"source": {"type": "configmap", "configMap": {"name": "catalogue", "namespace": "../x"}}},
    )
    assert "spec.source.configMap.namespace" in message
    # Without a namespace the operator reads the tenant's own namespace, where there is no such ConfigMap.
    tenant.registries.create(
        "cm-own", {**NO_API, "source": {"type": "configmap", "configMap": {"name": "catalogue"}}}
    )
    status = tenant.registries.wait("cm-own", lambda s: s.get("phase") == "Failed", timeout=60)["status"]
    assert f"{tenant.namespace}/catalogue" in status["syncStatus"]["message"]
    assert tenant.victim not in json.dumps(status)
    # Nothing of the victim's was stored in the tenant's namespace.
    for cm in tenant.kube.core.list_namespaced_config_map(tenant.namespace).items:
        assert "victim-only" not in json.dumps(cm.data or {}) + json.dumps(cm.binary_data or {})


def test_another_namespaces_secret_as_credentials(
    tenant: Tenant, bare_repo: BareRepo, git_daemon: GitDaemonServer
) -> None:
    bare_repo.commit({"registry.json": CATALOGUE})
    git = {
        "repository": git_daemon.url(bare_repo),
        "auth": {"secretRef": {"name": "creds", "namespace": tenant.victim}},
    }
    status = tenant.refused_by_operator(
        "git-creds", {"source": {"type": "git", "git": git}}, "CrossNamespaceReference"
    )
    assert "spec.source.git.auth.secretRef.namespace" in status["message"]
    s3 = {
        "bucket": "anything",
        "endpoint": "http://127.0.0.1:9",
        "credentialsSecretRef": {"name": "creds", "namespace": tenant.victim},
    }
    status = tenant.refused_by_operator(
        "s3-creds",
        {
            "source": {"type": "git", "git": {"repository": git_daemon.url(bare_repo)}},
            "storage": {"type": "s3", "s3": s3},
        },
        "CrossNamespaceReference",
    )
    assert "spec.storage.s3.credentialsSecretRef.namespace" in status["message"]
    assert "victim-secret" not in json.dumps(status)


def test_the_operators_own_s3_identity(
    tenant: Tenant, bare_repo: BareRepo, git_daemon: GitDaemonServer
) -> None:
    bare_repo.commit({"registry.json": CATALOGUE})
    storage = {
        "type": "s3",
        "s3": {"bucket": "someone-elses", "endpoint": "http://127.0.0.1:9", "forcePathStyle": True},
    }
    spec = {"source": {"type": "git", "git": {"repository": git_daemon.url(bare_repo)}}, "storage": storage}
    status = tenant.refused_by_operator("deputy", spec, "CredentialsRequired")
    message = status["syncStatus"]["message"]
    assert (
        "no credentialsSecretRef" in message
        and "'someone-elses'" in message
        and "nothing was written" in message
    )


@pytest.mark.parametrize(
    ("repository", "words"),
    [
        ("file:///etc", "file://, ssh:// and scp-style addresses are not supported"),
        ("/var/run/secrets/kubernetes.io/serviceaccount", "must be an https://, http:// or git:// URL"),
        ("ext::sh -c id", "must be an https://, http:// or git:// URL"),
    ],
)
def test_local_repositories(tenant: Tenant, repository: str, words: str) -> None:
    message = tenant.refused_at_admission(
        "local", {"source": {"type": "git", "git": {"repository": repository}}}
    )
    assert "spec.source.git.repository" in message and words in message


def test_a_path_leaving_the_repository(
    tenant: Tenant, bare_repo: BareRepo, git_daemon: GitDaemonServer
) -> None:
    url = git_daemon.url(bare_repo)
    for path, words in (
        ("../../etc/passwd", "must not contain '..' segments"),
        ("/etc/passwd", "must be relative"),
    ):
        message = tenant.refused_at_admission(
            "escape", {"source": {"type": "git", "git": {"repository": url, "path": path}}}
        )
        assert "spec.source.git.path" in message and words in message, message
    # A symbolic link out of the checkout is named a link, not followed.
    token = _blob(bare_repo, b"/var/run/secrets/kubernetes.io/serviceaccount/token")
    _commit_tree(bare_repo, [f"120000 blob {token}\tregistry.json"])
    status = tenant.refused_by_operator(
        "link", {"source": {"type": "git", "git": {"repository": url}}}, "SourceNotFound"
    )
    assert "is a symbolic link" in status["syncStatus"]["message"]


def test_a_repository_with_hooks_filters_and_submodules(
    tenant: Tenant, bare_repo: BareRepo, bare_repo_factory: Any, git_daemon: GitDaemonServer, tmp_path: Path
) -> None:
    """The repository's catalogue syncs; nothing it carries runs in the operator, and no submodule
    (one of them the victim's repository on the same server) is fetched."""
    marker = tmp_path / "ran"
    other = bare_repo_factory("victims-repo")
    hostile_repo(bare_repo, other, git_daemon.url(other), marker)
    git_daemon.clear_log()
    tenant.registries.create(
        "hostile", {**NO_API, "source": {"type": "git", "git": {"repository": git_daemon.url(bare_repo)}}}
    )
    status = tenant.registries.wait("hostile", lambda s: s.get("phase") == "Ready", timeout=60)["status"]
    assert status["syncStatus"]["serverCount"] == 0
    assert not marker.exists()
    assert all(other.name not in r.path for r in git_daemon.requests())
