"""The Helm chart with the real `helm` (built from Go modules) and the real control plane: lint,
template, server-side dry-run of everything it renders; then its RBAC applied for real and the operator
run as the chart's ServiceAccount (a TokenRequest token, nothing else) through a whole sync scenario —
proof the RBAC is enough — and the same identity refused what it must not do.

These tests get a control plane of their own: the session's operator (cluster-wide, as admin) would
otherwise handle the same MCPRegistries as the operator under test.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from fixtures.git_servers import GitHTTPCredentials
from fixtures.kube import Kube, wait_until
from fixtures.operator import GROUP, PLURAL, VERSION, OperatorProcess, Registries
from mcpreg_dev.binaries import ensure_helm
from mcpreg_dev.controlplane import ControlPlane
from mcpreg_dev.gitserver import BareRepo, SmartHTTPGitServer

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "mcp-registry-operator"
CATALOG = REPO / "examples" / "sample-catalog" / "registry.json"
RBAC_KINDS = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
# Exactly what the operator uses (cluster-wide, or in each watched namespace); see templates/rbac.yaml.
WORKLOAD_VERBS = {"list", "watch", "create", "patch", "delete"}
EXPECTED_RULES = {
    ("mcpregistry.dev", "mcpregistries"): {"get", "list", "watch", "patch"},
    ("mcpregistry.dev", "mcpregistries/status"): {"update", "patch"},
    ("mcpregistry.dev", "mcpregistries/finalizers"): {"update"},
    ("", "configmaps"): {"get", "list", "watch", "create", "update", "patch", "delete"},
    ("", "secrets"): {"get"},
    ("", "events"): {"create"},
    ("", "serviceaccounts"): WORKLOAD_VERBS,
    ("", "services"): WORKLOAD_VERBS,
    ("apps", "deployments"): WORKLOAD_VERBS | {"get"},
    ("rbac.authorization.k8s.io", "roles"): WORKLOAD_VERBS,
    ("rbac.authorization.k8s.io", "rolebindings"): WORKLOAD_VERBS,
    ("autoscaling", "horizontalpodautoscalers"): {"list"},
    ("networking.k8s.io", "networkpolicies"): WORKLOAD_VERBS,
    ("authorization.k8s.io", "localsubjectaccessreviews"): {"create"},
}
# Auth mode kubernetes (templates/rbac.yaml): what the API pods get bound to, and what the operator
# needs to bind them (bind on that one role, by name).
TOKEN_REVIEW_RULES = [
    {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]}
]
API_AUTH_RULES = [
    {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterrolebindings"],
     "verbs": ["create", "patch", "delete"]},
    {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"],
     "resourceNames": ["mcpreg-mcp-registry-operator-api-token-review"], "verbs": ["bind"]},
]  # fmt: skip
# What the operator may never be able to do, in any mode.
FORBIDDEN_EVERYWHERE = {
    ("", "secrets"): {"list", "watch", "create", "update", "patch", "delete", "deletecollection"},
    ("", "pods"): {"create", "delete"},
    ("", "nodes"): {"get", "list"},
    ("rbac.authorization.k8s.io", "roles"): {"escalate", "bind"},
    ("rbac.authorization.k8s.io", "clusterroles"): {"create", "escalate", "bind"},
}


# --- helm ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def helm() -> Path:
    return ensure_helm()


def run_helm(helm: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(helm), *args], capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return result


def render(
    helm: Path,
    *,
    release: str = "mcpreg",
    namespace: str = "mcp-system",
    values: dict[str, Any] | None = None,
    include_crds: bool = False,
) -> list[dict[str, Any]]:
    args = ["template", release, str(CHART), "--namespace", namespace]
    for key, value in (values or {}).items():
        args += ["--set-json", f"{key}={json.dumps(value)}"]
    if include_crds:
        args.append("--include-crds")
    return [d for d in yaml.safe_load_all(run_helm(helm, *args).stdout) if d]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def operator_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    [deployment] = by_kind(docs, "Deployment")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert isinstance(container, dict)
    return container


def rules_of(doc: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    """A role's grants as {(group, resource): verbs}."""
    grants: dict[tuple[str, str], set[str]] = {}
    for rule in doc.get("rules") or []:
        assert "resourceNames" not in rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                grants.setdefault((group, resource), set()).update(rule["verbs"])
    return grants


def assert_api_auth_roles(docs: list[dict[str, Any]]) -> None:
    roles = {d["metadata"]["name"]: d["rules"] for d in by_kind(docs, "ClusterRole")}
    assert roles["mcpreg-mcp-registry-operator-api-token-review"] == TOKEN_REVIEW_RULES
    assert roles["mcpreg-mcp-registry-operator-api-auth"] == API_AUTH_RULES
    [binding] = [
        d for d in by_kind(docs, "ClusterRoleBinding") if d["metadata"]["name"].endswith("-api-auth")
    ]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "mcpreg-mcp-registry-operator", "namespace": "mcp-system"}
    ]


def test_helm_lint_strict(helm: Path) -> None:
    for extra in ([], ["--set-json", 'watchNamespaces=["team-a","team-b"]'], ["--set", "image.tag=1.2.3"]):
        result = run_helm(helm, "lint", "--strict", str(CHART), *extra)
        assert "0 chart(s) failed" in result.stdout, result.stdout
        assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout, result.stdout


def test_template_cluster_wide(helm: Path) -> None:
    docs = render(helm, values={"api": {"image": "registry.example/api:9"}})
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == [
        "ClusterRole",
        "ClusterRole",
        "ClusterRole",
        "ClusterRole",
        "ClusterRoleBinding",
        "ClusterRoleBinding",
        "ClusterRoleBinding",
        "Deployment",
        "ServiceAccount",
    ]
    for doc in docs:
        labels = doc["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "mcp-registry-operator"
        assert labels["app.kubernetes.io/instance"] == "mcpreg"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/version"] == "0.1.0"
    assert_api_auth_roles(docs)
    roles = {
        d["metadata"]["name"]: rules_of(d)
        for d in by_kind(docs, "ClusterRole")
        if "-api-" not in d["metadata"]["name"]
    }
    main = roles["mcpreg-mcp-registry-operator"]
    discovery = roles["mcpreg-mcp-registry-operator-discovery"]
    assert discovery == {("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"}}
    assert main == EXPECTED_RULES
    for (group, resource), verbs in {**main, **discovery}.items():
        assert "*" not in verbs and group != "*" and resource != "*", (group, resource)
        assert not verbs & FORBIDDEN_EVERYWHERE.get((group, resource), set()), (group, resource, verbs)
    assert ("", "pods") not in main and ("", "nodes") not in main and ("", "namespaces") not in main

    [deployment] = by_kind(docs, "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == "mcpreg-mcp-registry-operator"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = operator_container(docs)
    assert container["image"] == "ghcr.io/mcp-registry-operator/mcp-registry-operator:0.1.0"
    assert container["args"] == [
        "operator",
        "--log-level=INFO",
        "--log-format=json",
        "--liveness=http://0.0.0.0:8081/healthz",
        "--metrics-port=8082",
    ]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MCPREG_API_IMAGE"] == "registry.example/api:9"
    assert env["MCPREG_API_TOKEN_REVIEW_CLUSTER_ROLE"] == "mcpreg-mcp-registry-operator-api-token-review"
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert pod["volumes"][0]["emptyDir"]


def test_template_namespaced(helm: Path) -> None:
    docs = render(
        helm,
        values={
            "watchNamespaces": ["team-a", "team-b"],
            "image": {"digest": "sha256:" + "a" * 64},
            "operator": {"logLevel": "DEBUG", "logFormat": "plain"},
        },
    )
    assert_api_auth_roles(docs)
    [cluster_role] = [d for d in by_kind(docs, "ClusterRole") if "-api-" not in d["metadata"]["name"]]
    assert rules_of(cluster_role) == {
        ("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"},
        ("", "namespaces"): {"list", "watch"},
    }
    roles = by_kind(docs, "Role")
    bindings = by_kind(docs, "RoleBinding")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    assert all(rules_of(role) == EXPECTED_RULES for role in roles)
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    for binding in bindings:
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "mcpreg-mcp-registry-operator", "namespace": "mcp-system"}
        ]
    container = operator_container(docs)
    assert container["image"] == "ghcr.io/mcp-registry-operator/mcp-registry-operator@sha256:" + "a" * 64
    assert container["args"][-2:] == ["--namespace=team-a", "--namespace=team-b"]
    assert "--log-level=DEBUG" in container["args"] and "--log-format=plain" in container["args"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MCPREG_API_IMAGE"] == container["image"]  # the operator's own image by default


def test_template_passes_the_ambient_s3_buckets_to_the_operator(helm: Path) -> None:
    env = {e["name"]: e.get("value") for e in operator_container(render(helm))["env"]}
    assert "MCPREG_S3_AMBIENT_BUCKETS" not in env  # by default the operator's identity is used nowhere
    allowed = ["catalogues", "http://minio.storage:9000/shared"]
    docs = render(helm, values={"operator.s3.ambientCredentials.allowedBuckets": allowed})
    env = {e["name"]: e.get("value") for e in operator_container(docs)["env"]}
    assert env["MCPREG_S3_AMBIENT_BUCKETS"] == "catalogues,http://minio.storage:9000/shared"
    bad = ["--set-json", 'operator.s3.ambientCredentials.allowedBuckets=["Not_A_Bucket"]']
    result = run_helm(helm, "template", "x", str(CHART), *bad, check=False)
    assert result.returncode != 0 and "allowedBuckets" in result.stderr, result.stderr


def test_template_refuses_http_url_sources_unless_allowed(helm: Path) -> None:
    env = {e["name"]: e.get("value") for e in operator_container(render(helm))["env"]}
    assert env["MCPREG_ALLOW_INSECURE_HTTP_SOURCES"] == "false"  # the cluster install's default
    docs = render(helm, values={"operator.allowInsecureHttpSources": True})
    env = {e["name"]: e.get("value") for e in operator_container(docs)["env"]}
    assert env["MCPREG_ALLOW_INSECURE_HTTP_SOURCES"] == "true"
    result = run_helm(
        helm, "template", "x", str(CHART), "--set", "operator.allowInsecureHttpSources=yes", check=False
    )
    assert result.returncode != 0 and "allowInsecureHttpSources" in result.stderr, result.stderr


def test_template_refuses_wrong_values(helm: Path) -> None:
    cases = [
        (["--set-json", 'watchNamespaces=["team-*"]'], "watchNamespaces"),
        (["--set", "operator.logFormat=xml"], "logFormat"),
        (["--set", "image.digest=latest"], "digest"),
        (["--set", "unknownKey=1"], "unknownKey"),
    ]
    for extra, mentioned in cases:
        result = run_helm(helm, "template", "x", str(CHART), *extra, check=False)
        assert result.returncode != 0, extra
        assert mentioned in result.stderr, result.stderr


def test_notes_tell_what_to_do_next(helm: Path) -> None:
    result = run_helm(
        helm,
        "install",
        "mcpreg",
        str(CHART),
        "--dry-run=client",
        "--namespace",
        "ops",
        "--set-json",
        'watchNamespaces=["team-a"]',
    )
    notes = result.stdout.split("NOTES:", 1)[1]
    assert "It manages MCPRegistries in: team-a" in notes
    assert "kubectl -n ops rollout status deployment/mcpreg-mcp-registry-operator" in notes
    assert "kubectl get mcpreg -n team-a" in notes
    assert "mcpregistry.dev/sync-trigger" in notes
    assert "thv config set-registry http://localhost:8080 -p" in notes


# --- a control plane of these tests' own -----------------------------------------------------------


@pytest.fixture(scope="module")
def chart_kube(request: pytest.FixtureRequest) -> Iterator[Kube]:
    cp = ControlPlane.create(with_kwok=True)  # API pods become Ready, as on a real node
    cp.start()
    try:
        api_client = config.new_client_from_config(config_file=str(cp.admin_kubeconfig))
        kube = Kube(control_plane=cp, api_client=api_client)
        # The chart's own copy of the CRD, as `helm install` would create it.
        kube.kubectl("apply", "--server-side", "-f", str(CHART / "crds"))
        kube.kubectl("wait", "--for=condition=Established", f"crd/{PLURAL}.{GROUP}", "--timeout=60s")
        yield kube
    finally:
        kept = cp.stop(keep_logs=request.session.testsfailed > 0)
        if kept:
            print(f"\nchart control-plane logs kept in {kept}")


RESTRICTED = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn", "audit")}


def make_namespace(kube: Kube, prefix: str, labels: dict[str, str] | None = None) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    kube.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels)))
    return name


def apply_documents(kube: Kube, docs: list[dict[str, Any]], *extra: str) -> str:
    return kube.kubectl(
        "apply",
        "--server-side",
        "--field-manager=helm-test",
        *extra,
        "-f",
        "-",
        input=yaml.safe_dump_all(docs),
    ).stdout


@pytest.mark.parametrize("namespaced", [False, True], ids=["cluster-wide", "namespaced"])
def test_rendered_chart_passes_server_side_dry_run(helm: Path, chart_kube: Kube, namespaced: bool) -> None:
    release_ns = make_namespace(chart_kube, "ops", RESTRICTED)
    watched = [make_namespace(chart_kube, "team")] if namespaced else []
    docs = render(
        helm,
        release=f"dry{uuid.uuid4().hex[:4]}",
        namespace=release_ns,
        values={"watchNamespaces": watched},
        include_crds=True,
    )
    out = apply_documents(chart_kube, docs, "--dry-run=server")
    assert out.count("(server dry run)") == len(docs), out
    assert "customresourcedefinition.apiextensions.k8s.io/mcpregistries.mcpregistry.dev" in out
    # Nothing was created.
    assert chart_kube.apps.list_namespaced_deployment(release_ns).items == []


def test_operator_pod_is_admitted_under_restricted_pod_security(helm: Path, chart_kube: Kube) -> None:
    """The Deployment for real, in a namespace enforcing the `restricted` Pod Security Standard: its pod
    is admitted, scheduled and (kwok playing the kubelet) becomes available."""
    release_ns = make_namespace(chart_kube, "ops", RESTRICTED)
    docs = render(helm, release="psa", namespace=release_ns)
    apply_documents(chart_kube, [d for d in docs if d["kind"] in ("ServiceAccount", "Deployment")])

    def available() -> bool:
        status = chart_kube.apps.read_namespaced_deployment("psa-mcp-registry-operator", release_ns).status
        return bool(status.available_replicas == 1)

    wait_until(available, timeout=60, what="the operator Deployment available")
    [pod] = chart_kube.core.list_namespaced_pod(release_ns).items
    assert pod.spec.service_account_name == "psa-mcp-registry-operator"
    chart_kube.core.delete_namespace(release_ns)


# --- the operator as the chart's ServiceAccount ----------------------------------------------------


@dataclass
class Installed:
    """The chart's RBAC applied for real, and the operator running with its ServiceAccount's token."""

    kube: Kube
    release_namespace: str
    service_account: str
    kubeconfig: Path
    operator: OperatorProcess
    docs: list[dict[str, Any]]

    def client(self) -> client.ApiClient:
        return config.new_client_from_config(config_file=str(self.kubeconfig))


def cleanup_cluster_objects(kube: Kube, docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        name = doc["metadata"]["name"]
        try:
            if doc["kind"] == "ClusterRole":
                kube.rbac.delete_cluster_role(name)
            elif doc["kind"] == "ClusterRoleBinding":
                kube.rbac.delete_cluster_role_binding(name)
        except ApiException as exc:
            if exc.status != 404:
                raise


@pytest.fixture
def install(helm: Path, chart_kube: Kube, tmp_path: Path) -> Iterator[Callable[[list[str]], Installed]]:
    """Install the chart's RBAC (watching the given namespaces, or all) and start the operator the way
    the chart's Deployment would run it, but as a local process holding only the ServiceAccount token."""
    started: list[Installed] = []

    def start(watch: list[str], *, without: tuple[str, str] | None = None) -> Installed:
        """`without`: (group, resource) whose rule is dropped from the rendered roles."""
        release = f"rel{uuid.uuid4().hex[:5]}"
        release_ns = make_namespace(chart_kube, "ops")
        docs = render(helm, release=release, namespace=release_ns, values={"watchNamespaces": watch})
        if without is not None:
            for doc in (d for d in docs if "rules" in d):
                doc["rules"] = [
                    r
                    for r in doc["rules"]
                    if not (without[0] in r["apiGroups"] and without[1] in r["resources"])
                ]
        apply_documents(chart_kube, [d for d in docs if d["kind"] in RBAC_KINDS])
        [sa] = by_kind(docs, "ServiceAccount")
        kubeconfig = chart_kube.service_account_kubeconfig(
            release_ns, sa["metadata"]["name"], tmp_path / f"{release}.kubeconfig"
        )
        container = operator_container(docs)
        env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
        # The Deployment's arguments, except the liveness and metrics ports (the fixture picks free ones).
        args = [a for a in container["args"][1:] if not a.startswith(("--liveness", "--metrics-port"))]
        operator = OperatorProcess(
            kubeconfig=kubeconfig,
            log_path=tmp_path / f"{release}-operator.log",
            extra_env={**env, "POD_NAMESPACE": release_ns},
            extra_args=args,
        )
        installed = Installed(chart_kube, release_ns, sa["metadata"]["name"], kubeconfig, operator, docs)
        started.append(installed)
        operator.start()
        return installed

    yield start
    for installed in started:
        installed.operator.stop()
        cleanup_cluster_objects(chart_kube, installed.docs)


def git_credentials_secret(kube: Kube, namespace: str, creds: GitHTTPCredentials) -> None:
    kube.core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="git-creds"),
            string_data={"username": creds.username, "password": creds.password},
        ),
    )


def git_registry_spec(url: str) -> dict[str, Any]:
    return {
        "source": {
            "type": "git",
            "git": {"repository": url, "branch": "main", "auth": {"secretRef": {"name": "git-creds"}}},
        }
    }


def operator_owns_replicas(kube: Kube, namespace: str, name: str) -> bool:
    deployment = kube.apps.read_namespaced_deployment(name, namespace)
    return any(
        entry.manager == "mcp-registry-operator" and "f:replicas" in json.dumps(entry.fields_v1 or {})
        for entry in deployment.metadata.managed_fields or []
    )


def hand_replicas_to_an_hpa(kube: Kube, namespace: str, deployment: str) -> None:
    """An HPA on the API Deployment: the operator must see it (a read it is granted, and whose refusal
    it would swallow) and stop managing replicas."""
    assert operator_owns_replicas(kube, namespace, deployment)
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": deployment, "namespace": namespace},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment},
            "minReplicas": 1,
            "maxReplicas": 3,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
                }
            ],
        },
    }
    kube.apply(hpa)
    # Any change of the Deployment makes the operator look at it again.
    kube.apps.patch_namespaced_deployment(
        deployment, namespace, {"metadata": {"annotations": {"nudge": "1"}}}
    )
    wait_until(
        lambda: not operator_owns_replicas(kube, namespace, deployment),
        timeout=30,
        what="the operator to leave spec.replicas to the HPA",
    )


def run_sync_scenario(
    installed: Installed, namespace: str, repo: BareRepo, server: SmartHTTPGitServer
) -> None:
    """git source with credentials → Ready; a new commit and a manual trigger; deletion."""
    kube = installed.kube
    registries = Registries(kube=kube, namespace=namespace)
    first = repo.commit({"registry.json": CATALOG.read_bytes()})
    registries.create("chart-demo", git_registry_spec(server.url(repo)))
    obj = registries.wait(
        "chart-demo",
        lambda s: s.get("phase") == "Ready" and s.get("syncStatus", {}).get("revision") == first,
        timeout=90,
        what="Ready at the first commit",
    )
    count = obj["status"]["syncStatus"]["serverCount"]
    assert count > 0
    conditions = {c["type"]: c["status"] for c in obj["status"]["conditions"]}
    assert conditions["Synced"] == conditions["Ready"] == "True"
    uid = obj["metadata"]["uid"]
    data = kube.core.read_namespaced_config_map("chart-demo-data", namespace)
    assert data.metadata.owner_references[0].uid == uid
    # The registry API's workload, created with the operator's identity (and made Ready by kwok).
    owned = [
        kube.core.read_namespaced_service_account("chart-demo-api", namespace),
        kube.core.read_namespaced_service("chart-demo-api", namespace),
        kube.apps.read_namespaced_deployment("chart-demo-api", namespace),
        kube.rbac.read_namespaced_role("chart-demo-api", namespace),
        kube.rbac.read_namespaced_role_binding("chart-demo-api", namespace),
        kube.core.read_namespaced_config_map("chart-demo-api-config", namespace),
    ]
    assert all(o.metadata.owner_references[0].uid == uid for o in owned)
    assert obj["status"]["apiStatus"]["phase"] == "Ready"
    hand_replicas_to_an_hpa(kube, namespace, "chart-demo-api")
    wait_until(
        lambda: any(
            e.reason == "Synced" and e.involved_object.name == "chart-demo"
            for e in kube.core.list_namespaced_event(namespace).items
        ),
        timeout=15,
        what="the Synced Event (posted after status)",
    )

    catalog = json.loads(CATALOG.read_text())
    [(name, entry)] = list(catalog["servers"].items())[:1]
    catalog["servers"][f"{name}-copy"] = entry
    second = repo.commit({"registry.json": json.dumps(catalog).encode()})
    trigger = registries.trigger("chart-demo")
    obj = registries.wait(
        "chart-demo",
        lambda s: s.get("lastManualSyncTrigger") == trigger and s.get("phase") == "Ready",
        timeout=60,
        what="the manual trigger acted upon",
    )
    assert obj["status"]["syncStatus"]["revision"] == second
    assert obj["status"]["syncStatus"]["serverCount"] == count + 1

    # Deletion: the operator's handler runs and removes its finalizer (owned objects then go by garbage
    # collection, which runs as kube-controller-manager, not as the operator: not waited for here).
    registries.delete("chart-demo")
    wait_until(lambda: not registries.exists("chart-demo"), timeout=60, what="the finalizer removed")

    log = installed.operator.log_text()
    assert "sync ok" in log
    for sign in ("HTTP 403", "Forbidden", "forbidden", "Not enough permissions"):
        assert sign not in log, (
            f"the operator met a permission error ({sign}); log: {installed.operator.log_path}"
        )


def expect_forbidden(call: Callable[[], Any], what: str) -> None:
    try:
        call()
    except ApiException as exc:
        assert exc.status == 403, f"{what}: expected 403, got {exc.status}"
        return
    raise AssertionError(f"{what}: allowed, but the operator's identity must be refused")


def role_body(name: str, rules: list[dict[str, Any]]) -> client.V1Role:
    return client.V1Role(metadata=client.V1ObjectMeta(name=name), rules=rules)


def check_common_refusals(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    rbac = client.RbacAuthorizationV1Api(api)
    expect_forbidden(lambda: core.list_namespaced_secret(namespace), f"list secrets in {namespace}")
    expect_forbidden(lambda: core.list_secret_for_all_namespaces(), "list secrets cluster-wide")
    expect_forbidden(
        lambda: core.create_namespaced_secret(namespace, client.V1Secret(metadata={"name": "x"})),
        "create a secret",
    )
    expect_forbidden(lambda: core.list_node(), "list nodes")
    expect_forbidden(lambda: core.list_namespaced_pod(namespace), "list pods")
    expect_forbidden(lambda: core.delete_namespace(namespace), "delete a namespace")
    expect_forbidden(
        lambda: rbac.create_cluster_role(client.V1ClusterRole(metadata={"name": "x"}, rules=[])),
        "create a ClusterRole",
    )
    # RBAC escalation prevention: the operator cannot grant what it does not hold...
    expect_forbidden(
        lambda: rbac.create_namespaced_role(
            namespace,
            role_body("escalated", [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]),
        ),
        "create a Role granting list of secrets",
    )
    expect_forbidden(
        lambda: rbac.create_namespaced_role_binding(
            namespace,
            client.V1RoleBinding(
                metadata={"name": "to-admin"},
                role_ref=client.V1RoleRef(
                    api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="admin"
                ),
                subjects=[client.RbacV1Subject(kind="ServiceAccount", name="default", namespace=namespace)],
            ),
        ),
        "bind the admin ClusterRole",
    )
    # ...but it can create what each registry's API needs (issue: API workload RBAC): a Role reading
    # only named ConfigMaps, and its binding, without `escalate` or `bind`.
    rbac.create_namespaced_role(
        namespace,
        role_body(
            "api-reader",
            [
                {
                    "apiGroups": [""],
                    "resources": ["configmaps"],
                    "resourceNames": ["x-data"],
                    "verbs": ["get", "list", "watch"],
                }
            ],
        ),
    )
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata={"name": "api-reader"},
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="api-reader"),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name="x-api", namespace=namespace)],
        ),
    )


def test_operator_as_chart_service_account_cluster_wide(
    install: Callable[..., Installed],
    chart_kube: Kube,
    bare_repo: BareRepo,
    git_http_server: SmartHTTPGitServer,
    git_http_credentials: GitHTTPCredentials,
) -> None:
    installed = install([])
    assert installed.operator.extra_args == ["--log-level=INFO", "--log-format=json"]
    namespace = make_namespace(chart_kube, "team")
    git_credentials_secret(chart_kube, namespace, git_http_credentials)
    run_sync_scenario(installed, namespace, bare_repo, git_http_server)
    check_common_refusals(installed.client(), namespace)


def test_operator_as_chart_service_account_namespaced(
    install: Callable[..., Installed],
    chart_kube: Kube,
    bare_repo: BareRepo,
    git_http_server: SmartHTTPGitServer,
    git_http_credentials: GitHTTPCredentials,
) -> None:
    watched = make_namespace(chart_kube, "team")
    other = make_namespace(chart_kube, "other")
    for ns in (watched, other):
        git_credentials_secret(chart_kube, ns, git_http_credentials)
    # A registry in a namespace the operator does not manage: it must stay untouched.
    Registries(kube=chart_kube, namespace=other).create(
        "elsewhere", git_registry_spec(git_http_server.url(bare_repo))
    )
    installed = install([watched])
    assert f"--namespace={watched}" in installed.operator.extra_args
    run_sync_scenario(installed, watched, bare_repo, git_http_server)

    elsewhere = Registries(kube=chart_kube, namespace=other).get("elsewhere")
    assert "status" not in elsewhere and not elsewhere["metadata"].get("finalizers")

    api = installed.client()
    check_common_refusals(api, watched)
    core = client.CoreV1Api(api)
    custom = client.CustomObjectsApi(api)
    rbac = client.RbacAuthorizationV1Api(api)
    expect_forbidden(
        lambda: core.read_namespaced_secret("git-creds", other), "read a Secret in another namespace"
    )
    expect_forbidden(lambda: core.list_namespaced_config_map(other), "list ConfigMaps in another namespace")
    expect_forbidden(lambda: core.list_config_map_for_all_namespaces(), "list ConfigMaps cluster-wide")
    expect_forbidden(
        lambda: custom.get_namespaced_custom_object(GROUP, VERSION, other, PLURAL, "elsewhere"),
        "read an MCPRegistry in another namespace",
    )
    expect_forbidden(
        lambda: custom.list_cluster_custom_object(GROUP, VERSION, PLURAL), "list MCPRegistries cluster-wide"
    )
    expect_forbidden(
        lambda: rbac.create_namespaced_role(other, role_body("x", [])), "create a Role in another namespace"
    )
    # It still reads its own namespace's Secret by name (git credentials).
    assert core.read_namespaced_secret("git-creds", watched).data


def test_a_missing_rule_shows_in_status(
    install: Callable[..., Installed],
    chart_kube: Kube,
    bare_repo: BareRepo,
    git_http_server: SmartHTTPGitServer,
    git_http_credentials: GitHTTPCredentials,
) -> None:
    """The scenario above is not vacuous: without the chart's `secrets: get` rule the same operator
    cannot sync a registry with credentials, and says why in status."""
    watched = make_namespace(chart_kube, "team")
    git_credentials_secret(chart_kube, watched, git_http_credentials)
    install([watched], without=("", "secrets"))
    repo_url = git_http_server.url(bare_repo)
    bare_repo.commit({"registry.json": CATALOG.read_bytes()})
    registries = Registries(kube=chart_kube, namespace=watched)
    registries.create("no-secrets", git_registry_spec(repo_url))
    obj = registries.wait("no-secrets", lambda s: s.get("phase") == "Failed", timeout=60, what="Failed")
    reasons = {c["type"]: c["reason"] for c in obj["status"]["conditions"]}
    assert reasons["SourceAvailable"] == "AuthenticationFailed"
    assert "may not read Secret" in obj["status"]["message"]
    assert "RBAC" in obj["status"]["message"]
