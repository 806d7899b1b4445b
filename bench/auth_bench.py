"""Auth mode kubernetes: requests per second of an authenticated list page with a warm decision
cache, against the same page read anonymously, and the TokenReview / SubjectAccessReview calls made
per 1,000 requests.

A control plane (etcd + kube-apiserver) is started; a ServiceAccount `agent` gets a RoleBinding
granting `get` on `mcpregistries/catalog` of the registry and a TokenRequest token for the registry's
audience. Two `mcpreg serve` processes serve the real 102-server catalogue from a file, one anonymous,
one with `auth.mode: kubernetes` (reviews made with the admin kubeconfig; the cache TTL at its default
of 10 s), each pinned to CPU 0 in turn, access log on; wrk (1 thread, 64 connections, CPU 1) reads
`GET /v0.1/servers` (with `Authorization: Bearer <token>` for the second). Reviews are counted from
the server's own `mcpreg_api_auth_reviews_total`, requests from `mcpreg_api_requests_total`.
Each figure is the median of --repeat runs of --duration seconds.

    .venv/bin/python bench/auth_bench.py [--duration 5] [--repeat 3] [--connections 64] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path

from api_bench import LATEST, ApiServer, WrkResult, get, median_run, run_wrk_once, wrk_arguments, wrk_report
from kubernetes import client, config

from mcpreg.apiconfig import API_VERSION, KIND, default_audience
from mcpreg_dev.controlplane import ControlPlane

NAMESPACE, REGISTRY = "bench", "company"
PATH = "/v0.1/servers"


def counter_sum(port: int, name: str, labels: str = "") -> float:
    """The sum of counter `name` over the series whose labels start with `labels` (e.g. `kind="token"`)."""
    text = get(port, "/metrics")[1].decode()
    series = rf"^{re.escape(name)}(?:{{{re.escape(labels)}[^}}]*}})? (\S+)$"
    return sum(float(value) for value in re.findall(series, text, re.M))


def caller_token(api: client.ApiClient, audience: str) -> str:
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))
    core.create_namespaced_service_account(NAMESPACE, client.V1ServiceAccount(metadata={"name": "agent"}))
    rbac.create_namespaced_role(
        NAMESPACE,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="read-catalog"),
            rules=[
                client.V1PolicyRule(
                    api_groups=["mcpregistry.dev"],
                    resources=["mcpregistries/catalog"],
                    resource_names=[REGISTRY],
                    verbs=["get"],
                )
            ],
        ),
    )
    rbac.create_namespaced_role_binding(
        NAMESPACE,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="read-catalog"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name="read-catalog"
            ),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name="agent", namespace=NAMESPACE)],
        ),
    )
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[audience], expiration_seconds=3600)
    )
    token: str = core.create_namespaced_service_account_token("agent", NAMESPACE, request).status.token
    return token


def measure(
    servers: list[tuple[str, ApiServer, dict[str, str]]], args: argparse.Namespace
) -> list[WrkResult]:
    """The median run of each server, the servers' runs interleaved (A B A B ...) so that a change in
    the neighbours' load on this shared machine touches both alike."""
    for name, server, headers in servers:
        status, body = get(server.port, PATH, headers)
        if status != 200:
            raise SystemExit(f"{name}: GET {PATH} answered {status}: {body[:200]!r}")
    runs: list[list[WrkResult]] = [[] for _ in servers]
    for _ in range(args.repeat):
        for index, (name, server, headers) in enumerate(servers):
            url = f"http://127.0.0.1:{server.port}{PATH}"
            runs[index].append(run_wrk_once(name, url, args, headers, server.process.pid))
    return [median_run(results) for results in runs]


def main() -> int:
    args = wrk_arguments(__doc__)
    args.threads = 1
    audience = default_audience(NAMESPACE, REGISTRY)
    plane = ControlPlane.create(with_controller_manager=False)
    plane.start()
    try:
        token = caller_token(config.new_client_from_config(config_file=str(plane.admin_kubeconfig)), audience)
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            document = workdir / "auth.json"
            document.write_text(
                json.dumps(
                    {
                        "apiVersion": API_VERSION,
                        "kind": KIND,
                        "registry": REGISTRY,
                        "namespace": NAMESPACE,
                        "storage": {"type": "file", "path": str(LATEST)},
                        "auth": {"mode": "kubernetes", "kubernetes": {"audience": audience}},
                    }
                )
            )
            # Both pinned to CPU 0; only the one wrk is reading uses it.
            anonymous = ApiServer(LATEST, workdir)
            guarded = ApiServer(
                LATEST, workdir, config=document, extra=("--kubeconfig", str(plane.admin_kubeconfig))
            )
            try:
                open_result, authed = measure(
                    [
                        ("anonymous GET /v0.1/servers", anonymous, {}),
                        ("kubernetes GET /v0.1/servers", guarded, {"Authorization": f"Bearer {token}"}),
                    ],
                    args,
                )
                requests = counter_sum(guarded.port, "mcpreg_api_requests_total")
                reviews = {
                    kind: counter_sum(guarded.port, "mcpreg_api_auth_reviews_total", f'kind="{kind}"')
                    for kind in ("token", "access")
                }
            finally:
                anonymous.stop()
                guarded.stop()
    finally:
        plane.stop()
    return wrk_report(
        args,
        [open_result, authed],
        authenticated_vs_anonymous=round(authed.requests_per_s / open_result.requests_per_s, 3),
        requests_served_with_auth=requests,
        token_reviews_per_1000_requests=round(reviews["token"] / requests * 1000, 4),
        access_reviews_per_1000_requests=round(reviews["access"] / requests * 1000, 4),
    )


if __name__ == "__main__":
    sys.exit(main())
