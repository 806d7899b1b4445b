"""What signing costs of a whole sync, measured in the real operator (issue 18's aim: under 5 %).

`signing_bench.py` times signing against the CPU work of a sync in one process; this one runs the
real operator (a control plane with a kwok node, a smart-HTTP git server) and lets it sync a
10,000-server catalogue from git again and again, unsigned, signed with ECDSA P-256 and with Ed25519,
the three alternating round by round so each sees the same machine load. Each round commits a changed
catalogue and triggers a sync of one registry; the operator's own metrics
(`mcpreg_operator_sync_step_seconds`, read before and after) give the time each step of that sync
took, so signing's share is the `sign` step over all the steps of the signed syncs; the wall time from
the trigger to the new hash in status is reported beside it.

    .venv/bin/python bench/signing_sync_bench.py [--servers 10000] [--rounds 5] [--json]
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import cmdline  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, ed25519  # noqa: E402
from kubernetes import client, config  # noqa: E402
from storage_bench import SHARED_DATA  # noqa: E402

from fixtures.kube import Kube  # noqa: E402
from fixtures.operator import CRD_FILE, GROUP, PLURAL, VERSION, OperatorProcess  # noqa: E402
from mcpreg_dev.controlplane import ControlPlane  # noqa: E402
from mcpreg_dev.gitserver import SmartHTTPGitServer, create_bare_repo  # noqa: E402
from mcpreg_dev.samples import replicated_toolhive  # noqa: E402

SOURCE = SHARED_DATA / "toolhive" / "registry-2026-02-18.json"
NAMESPACE = "bench"
STEPS = ("revision", "fetch", "prepare", "sign", "store")
KEYS: dict[str, Any] = {
    "unsigned": None,
    "ecdsa-p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "ed25519": ed25519.Ed25519PrivateKey.generate,
}


def step_sums(operator: OperatorProcess) -> dict[str, float]:
    url = f"http://127.0.0.1:{operator.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    sums = dict.fromkeys(STEPS, 0.0)
    for line in text.splitlines():
        for step in STEPS:
            if line.startswith(f'mcpreg_operator_sync_step_seconds_sum{{step="{step}"}}'):
                sums[step] = float(line.rsplit(" ", 1)[1])
    return sums


def status_of(kube: Kube, name: str) -> dict[str, Any]:
    obj = kube.custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
    return dict(obj.get("status") or {})


def wait_status(kube: Kube, name: str, predicate: Any, timeout: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = status_of(kube, name)
        if predicate(status):
            return status
        time.sleep(0.05)
    raise TimeoutError(f"{name}: {status}")


def summary(figures: dict[str, list[float]]) -> dict[str, Any]:
    """One mode's medians: trigger → stored, each step, and signing's share of the steps and of the wall."""
    median = {key: statistics.median(values) for key, values in figures.items()}
    steps_total = sum(median[step] for step in STEPS)
    return {
        "trigger_to_stored_s": round(median["wall_s"], 3),
        "steps_s": {step: round(median[step], 3) for step in STEPS},
        "sign_share_of_steps": round(median["sign"] / steps_total, 4) if steps_total else None,
        "sign_share_of_wall": round(median["sign"] / median["wall_s"], 4),
    }


def main() -> int:
    args = cmdline.parser(__doc__.split("\n\n")[0], servers=10_000, rounds=5).parse_args()
    work = Path(tempfile.mkdtemp(prefix="mcpreg-signing-sync-bench-"))
    (work / "git").mkdir()
    document = replicated_toolhive(json.loads(SOURCE.read_text()), args.servers)
    first_server = next(iter(document["servers"]))
    per_mode: dict[str, dict[str, list[float]]] = {
        mode: {"wall_s": [], **{step: [] for step in STEPS}} for mode in KEYS
    }
    with ControlPlane.create(with_kwok=True) as cp, SmartHTTPGitServer(work / "git") as git:
        kube = Kube(cp, config.new_client_from_config(config_file=str(cp.admin_kubeconfig)))
        kube.kubectl("apply", "--server-side", "-f", str(CRD_FILE))
        kube.kubectl("wait", "--for=condition=Established", f"crd/{PLURAL}.{GROUP}")
        kube.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))
        operator = OperatorProcess(kubeconfig=cp.admin_kubeconfig, log_path=work / "operator.log")
        operator.start()
        try:
            repos = {}
            for mode, make_key in KEYS.items():
                repo = repos[mode] = create_bare_repo(work / "git", mode)
                repo.commit({"registry.json": json.dumps(document)})
                spec: dict[str, Any] = {
                    "source": {"type": "git", "git": {"repository": git.url(repo), "path": "registry.json"}},
                    "api": {"enabled": False},
                }
                if make_key is not None:
                    pem = make_key().private_bytes(
                        serialization.Encoding.PEM,
                        serialization.PrivateFormat.PKCS8,
                        serialization.NoEncryption(),
                    )
                    secret = client.V1Secret(
                        metadata=client.V1ObjectMeta(name=f"{mode}-key"),
                        string_data={"signing.key": pem.decode()},
                    )
                    kube.core.create_namespaced_secret(NAMESPACE, secret)
                    spec["signing"] = {"secretRef": {"name": f"{mode}-key"}}
                body = {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "MCPRegistry",
                    "metadata": {"name": mode},
                    "spec": spec,
                }
                kube.custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)
                wait_status(kube, mode, lambda s: s.get("phase") == "Ready")
            for round_ in range(args.rounds):
                for mode in KEYS:  # alternating: every mode sees the same load
                    document["servers"][first_server]["description"] = f"{mode} round {round_}"
                    repos[mode].commit({"registry.json": json.dumps(document)})
                    old_hash = status_of(kube, mode)["syncStatus"]["lastSyncHash"]
                    before = step_sums(operator)
                    started = time.monotonic()
                    patch = {"metadata": {"annotations": {f"{GROUP}/sync-trigger": f"r{round_}"}}}
                    kube.custom.patch_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, mode, patch)
                    wait_status(
                        kube,
                        mode,
                        lambda s, h=old_hash: (
                            s.get("phase") == "Ready"
                            and (s.get("syncStatus") or {}).get("lastSyncHash") not in (None, h)
                        ),
                    )
                    per_mode[mode]["wall_s"].append(time.monotonic() - started)
                    after = step_sums(operator)
                    for step in STEPS:
                        per_mode[mode][step].append(after[step] - before[step])
        finally:
            operator.stop()
    modes = {mode: summary(figures) for mode, figures in per_mode.items()}
    if args.json:
        print(json.dumps({"servers": args.servers, "rounds": args.rounds, **modes}, indent=2))
    else:
        print(f"{args.servers} servers, median of {args.rounds} syncs each")
        for mode, figures in modes.items():
            steps = ", ".join(f"{step} {seconds:.3f}" for step, seconds in figures["steps_s"].items())
            print(
                f"  {mode:10} trigger → stored {figures['trigger_to_stored_s']:.2f} s ({steps}); "
                f"sign {figures['sign_share_of_steps'] or 0:.1%} of the steps, "
                f"{figures['sign_share_of_wall']:.1%} of the wall time"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
