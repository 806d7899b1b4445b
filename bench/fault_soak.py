"""Soak benchmark of random faults (issue 12): N minutes of faults drawn at random (seeded) against M
registries, with the fault-injection suite's invariants checked after every one.

Set-up, as in tests/integration/test_faults.py: a control plane of its own (kwok, or the real node
when MCPREG_NODE allows it), an operator of its own watching one namespace through the HTTP fault
proxy (`mcpreg_dev.httpfault`), git through Toxiproxy in front of a `git daemon`, and M
MCPRegistries on generated catalogues (200 to 3,000 servers; every fifth one 5,000, so that it is
split into parts and a part can be deleted). API disabled on kwok; on a real node each registry runs
one API replica and the kubelet restart joins the faults.

Each round draws a fault (from a shuffled deck, so every kind comes once per cycle), applies it while
some registries get a new commit (and, mostly, a trigger), ends it, triggers the registries, then
waits (bounded) until every registry is Ready with the server count and revision of its latest
commit and its storage is whole (head hash == status's lastSyncHash, every part there). That wait is
the round's convergence time. Then `check_invariants` (the suite's own) for every registry. During
the fault, storage is sampled every second: a head (and its parts) must always be there, and a git
fault must leave the triggered registries' stored hash alone. A violation is recorded (round, kind,
registry, what) and the soak goes on. The operator's RSS is sampled every second.

Faults: apiserver-500 (60 % of non-watch requests), apiserver-429 (all of them), apiserver-reset
(60 % reset, and every open connection dropped), kube-apiserver-restart, etcd-restart (5 s down),
git-down, git-slow (500 B/s, beyond the operator's 6 s git timeout), git-cut (cut after 16 KiB),
operator-sigkill (0-2 s after the triggers, then restarted), data-head-deleted, data-part-deleted
(by hand; that registry is not triggered, the operator's ConfigMap watch must repair it),
source-change (new commits only), kubelet-restart (real node only).

Run: .venv/bin/python bench/fault_soak.py [--minutes 30] [--registries 20] [--seed N] [--json out.json]
Exit status 1 when a violation was recorded.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import urllib3  # noqa: E402
from kubernetes import client, config  # noqa: E402
from kubernetes.client.rest import ApiException  # noqa: E402
from procstat import descendants, rss_kib  # noqa: E402

from fixtures.kube import Kube  # noqa: E402
from fixtures.operator import CRD_FILE, GROUP, PLURAL, VERSION, OperatorProcess, Registries  # noqa: E402
from integration.test_faults import (  # noqa: E402
    FAULT_S,
    GIT_TIMEOUT_S,
    catalogue,
    check_invariants,
    no_api,
    start_operator,
    stored_hash,
)
from integration.test_operator_sync import git_spec, is_ready_with  # noqa: E402
from mcpreg.labels import INSTANCE as LABEL_INSTANCE  # noqa: E402
from mcpreg.storage.configmap_layout import LABEL_OBJECT, parse_head_annotations  # noqa: E402
from mcpreg.storage.errors import StorageError  # noqa: E402
from mcpreg_dev.controlplane import ControlPlane  # noqa: E402
from mcpreg_dev.faultproxy import Proxy, ToxiproxyAPI, ToxiproxyServer  # noqa: E402
from mcpreg_dev.gitserver import BareRepo, GitDaemonServer, create_bare_repo  # noqa: E402
from mcpreg_dev.httpfault import HTTPFaultProxy  # noqa: E402
from mcpreg_dev.node import node_mode  # noqa: E402

NAMESPACE = "soak"
KWOK_IMAGE = "ghcr.io/mcp-registry-operator/mcp-registry-operator:0.1.0"  # never run on kwok
FAULT_KINDS = (
    "apiserver-500",
    "apiserver-429",
    "apiserver-reset",
    "kube-apiserver-restart",
    "etcd-restart",
    "git-down",
    "git-slow",
    "git-cut",
    "operator-sigkill",
    "data-head-deleted",
    "data-part-deleted",
    "source-change",
)
REAL_NODE_KINDS = ("kubelet-restart",)
GIT_HOLD_S = max(FAULT_S, GIT_TIMEOUT_S + 4.0)  # long enough for the triggered git syncs to fail
RESTART_DOWN_S = 5.0
SPLIT_SERVERS = 5000  # > 900 KiB of gzip: stored in parts
# Transient failures of the bench's own API calls (the API server restarting under it).
TRANSIENT = (ApiException, urllib3.exceptions.HTTPError, OSError)
T = TypeVar("T")


def retrying(call: Callable[[], T], *, timeout: float = 30.0) -> T:
    """`call`, retried while the API server is away (restarts end within seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except TRANSIENT:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.5)


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "median": round(statistics.median(ordered), 2),
        "p90": round(ordered[math.ceil(0.9 * len(ordered)) - 1], 2),  # nearest rank
        "max": round(ordered[-1], 2),
    }


@dataclass(frozen=True)
class Violation:
    round: int
    kind: str
    registry: str
    what: str


@dataclass
class StoredView:
    """One registry's storage, from one metadata-only list of the namespace's ConfigMaps."""

    head_hash: str | None = None
    parts: tuple[str, ...] = ()
    present: set[str] = field(default_factory=set)
    problem: str | None = None

    def whole(self) -> str | None:
        """What is missing, or None when the head and every part it lists are there."""
        if self.problem:
            return self.problem
        if self.head_hash is None:
            return "head ConfigMap missing"
        missing = [p for p in self.parts if p not in self.present]
        return f"parts missing: {', '.join(missing)}" if missing else None


@dataclass
class RssSampler:
    """The operator's VmRSS every second (main process; and with its children: git, parse workers),
    following it across restarts."""

    operator: OperatorProcess
    started: float
    samples: list[tuple[float, int, int]] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.done.wait(1.0):
            proc = self.operator.process
            if proc is None or proc.poll() is not None:
                continue
            main = rss_kib(proc.pid)
            tree = main + sum(rss_kib(child) for child in descendants(proc.pid))
            if main:
                self.samples.append((round(time.monotonic() - self.started, 1), main, tree))

    def start(self) -> None:
        threading.Thread(target=self.run, name="rss", daemon=True).start()


class Soak:
    def __init__(
        self,
        *,
        kube: Kube,
        cp: ControlPlane,
        operator: OperatorProcess,
        api_proxy: HTTPFaultProxy,
        git_proxy: Proxy,
        repos: dict[str, BareRepo],
        rng: random.Random,
    ) -> None:
        self.kube = kube
        self.cp = cp
        self.operator = operator
        self.api_proxy = api_proxy
        self.git_proxy = git_proxy
        self.repos = repos
        self.rng = rng
        self.registries = Registries(kube=kube, namespace=NAMESPACE)
        self.counts: dict[str, int] = {}
        self.revisions: dict[str, str] = {}
        self.violations: list[Violation] = []
        self.round = 0
        self.kind = "setup"
        self.tracebacks_reported = 0
        self.operator_restarts = 0
        self.toxic_removal_s: list[float] = []  # how long Toxiproxy took to remove the git toxics

    @property
    def names(self) -> list[str]:
        return list(self.repos)

    # Sources ----------------------------------------------------------------------------------------

    def commit(self, name: str, count: int | None = None) -> None:
        """A new commit whose server count is new too: the count says which commit status reflects."""
        self.counts[name] = count if count is not None else self.counts[name] + 1
        self.revisions[name] = self.repos[name].commit({"registry.json": catalogue(self.counts[name])})

    def trigger(self, names: list[str]) -> None:
        for name in names:
            retrying(partial(self.registries.trigger, name))

    # Observations -----------------------------------------------------------------------------------

    def violation(self, registry: str, what: str) -> None:
        found = Violation(self.round, self.kind, registry, what)
        if found not in self.violations:
            self.violations.append(found)
            print(f"  VIOLATION round {self.round} {self.kind} {registry}: {what[:400]}", file=sys.stderr)

    def storage(self) -> dict[str, StoredView]:
        """Every registry's head hash, parts and present objects, from one metadata-only list (the
        data ConfigMaps themselves are up to 900 KiB each)."""
        answer = self.kube.api_client.call_api(
            f"/api/v1/namespaces/{NAMESPACE}/configmaps",
            "GET",
            header_params={"Accept": "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"},
            response_types_map={200: "object"},
            auth_settings=["BearerToken"],
            _return_http_data_only=True,
        )
        views = {name: StoredView() for name in self.names}
        for item in answer.get("items") or []:
            meta = item.get("metadata") or {}
            view = views.get((meta.get("labels") or {}).get(LABEL_INSTANCE, ""))
            if view is None:
                continue
            view.present.add(meta["name"])
            if (meta.get("labels") or {}).get(LABEL_OBJECT) == "head":
                try:
                    head = parse_head_annotations(item)
                except StorageError as exc:
                    view.problem = f"head unreadable: {exc}"
                    continue
                view.head_hash, view.parts = head.content_hash, head.part_names
        return views

    def statuses(self) -> dict[str, dict[str, Any]]:
        listed = self.kube.custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL)
        return {obj["metadata"]["name"]: obj.get("status") or {} for obj in listed["items"]}

    def hold(self, seconds: float, *, skip: frozenset[str] = frozenset()) -> None:
        """Let the fault last `seconds`, checking every second that storage holds a whole generation."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                views = self.storage()
            except TRANSIENT:
                views = {}
            for name, view in views.items():
                missing = None if name in skip else view.whole()
                if missing:
                    self.violation(name, f"during the fault: {missing}")
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(1.0, left))

    def converged(self, name: str, status: dict[str, Any], view: StoredView) -> bool:
        sync = status.get("syncStatus") or {}
        return bool(
            is_ready_with(self.counts[name])(status)
            and sync.get("revision") == self.revisions[name]
            and view.whole() is None
            and view.head_hash == sync.get("lastSyncHash")
        )

    def wait_converged(self, since: float, timeout: float) -> float | None:
        """Seconds from `since` until every registry has converged; None (and a violation for each
        straggler) when `timeout` passes first."""
        pending = set(self.names)
        deadline = since + timeout
        statuses: dict[str, dict[str, Any]] = {}
        views: dict[str, StoredView] = {}
        while True:
            try:
                statuses, views = self.statuses(), self.storage()
            except TRANSIENT:
                pass
            else:
                pending = {n for n in pending if not self.converged(n, statuses.get(n, {}), views[n])}
            if not pending:
                return time.monotonic() - since
            if time.monotonic() >= deadline:
                break
            time.sleep(0.25)
        for name in sorted(pending):
            status = statuses.get(name, {})
            sync = status.get("syncStatus") or {}
            view = views.get(name, StoredView())
            self.violation(
                name,
                f"not converged within {timeout:.0f} s: phase {status.get('phase')}, serverCount "
                f"{sync.get('serverCount')} (latest commit {self.counts[name]}), revision "
                f"{str(sync.get('revision'))[:12]} (latest {self.revisions[name][:12]}), storage "
                f"{view.whole() or 'whole'}, head hash == status's: "
                f"{view.head_hash == sync.get('lastSyncHash')}"
                f"; message: {status.get('message')}",
            )
        return None

    def check(self) -> None:
        """The suite's `check_invariants` for every registry. Its asserts carry no message outside
        pytest, so a failure is described by looking again at what it compares."""
        failed: list[tuple[str, str]] = []
        for name in self.names:
            try:
                retrying(partial(check_invariants, self.kube, self.registries, name, self.operator))
            except AssertionError as exc:
                failed.append((name, str(exc)))
        if not failed:
            return
        before = len(self.violations)
        for name, _ in failed:
            self.registry_problems(name)
        self.operator_problems()
        # Nothing new found: the traceback reported in an earlier round (the suite's last check) fails
        # every later check; without one, the failure was transient and is recorded as such.
        if len(self.violations) == before and not self.tracebacks_reported:
            for name, message in failed:
                self.violation(name, f"check_invariants failed, not reproduced: {message[:300]}")

    def registry_problems(self, name: str) -> None:
        obj = self.registries.get(name)
        status_hash = (obj.get("status") or {}).get("syncStatus", {}).get("lastSyncHash")
        head = stored_hash(self.kube, NAMESPACE, name)
        if head != status_hash:
            self.violation(name, f"head ConfigMap hash {head} != status lastSyncHash {status_hash}")
        owned = self.kube.core.list_namespaced_config_map(
            NAMESPACE, label_selector=f"{LABEL_INSTANCE}={name}"
        ).items
        uid = obj["metadata"]["uid"]
        for cm in owned:
            owners = [r.uid for r in cm.metadata.owner_references or []]
            if owners != [uid]:
                self.violation(name, f"ConfigMap {cm.metadata.name} owned by {owners}, not [{uid}]")

    def operator_problems(self) -> None:
        """Operator-wide: dead (then restarted, so the soak goes on), or a new traceback in its log."""
        proc = self.operator.process
        if proc is None or proc.poll() is not None:
            code = None if proc is None else proc.returncode
            tail = self.operator.log_text()[-1500:]
            self.violation("-", f"the operator died (exit code {code}); log tail:\n{tail}")
            self.operator.start()
            self.operator_restarts += 1
        text = self.operator.log_text()
        starts = [m.start() for m in re.finditer("Traceback", text)]
        for index in starts[self.tracebacks_reported :]:
            line_start = text.rfind("\n", 0, text.rfind("\n", 0, index)) + 1  # the line before too
            self.violation("-", f"Traceback in the operator log:\n{text[line_start : index + 2500]}")
        self.tracebacks_reported = max(self.tracebacks_reported, len(starts))

    # Faults -----------------------------------------------------------------------------------------

    def commit_and_trigger(self, names: list[str]) -> None:
        for name in names:
            self.commit(name)
        self.trigger(names)

    def apply(self, kind: str, during: list[str]) -> frozenset[str]:
        """Apply `kind` while `during` get new commits; end it. Returns the registries that must
        converge without a trigger."""
        if kind.startswith("apiserver-"):
            if kind == "apiserver-500":
                self.api_proxy.fail(
                    500, times=None, percent=60, watch=False, message="etcdserver: request timed out"
                )
            elif kind == "apiserver-429":
                self.api_proxy.fail(429, times=None, watch=False, retry_after=1)
            else:
                self.api_proxy.reset_connections(times=None, percent=60)
                self.api_proxy.drop_connections()  # the watches too
            self.commit_and_trigger(during)
            self.hold(FAULT_S)
            self.api_proxy.clear()
        elif kind in ("kube-apiserver-restart", "etcd-restart"):
            self.commit_and_trigger(during)
            time.sleep(self.rng.uniform(0.0, 1.0))
            self.cp.restart(kind.removesuffix("-restart"), down_seconds=RESTART_DOWN_S)
        elif kind == "kubelet-restart":
            assert self.cp.node is not None
            self.commit_and_trigger(during)
            self.cp.node.restart_kubelet(down_seconds=RESTART_DOWN_S)
        elif kind.startswith("git-"):
            if kind == "git-down":
                self.git_proxy.disable()
            elif kind == "git-slow":  # ~500 B/s in small slices: far beyond the git timeout
                self.git_proxy.slicer(10, 0, 20_000)
            else:
                self.git_proxy.limit_data(16 * 1024)  # the smallest pack is larger: cut mid-transfer
            views = retrying(self.storage)
            before = {name: views[name].head_hash for name in during}
            self.commit_and_trigger(during)
            self.hold(GIT_HOLD_S)
            views = retrying(self.storage)
            for name in during:
                if views[name].head_hash != before[name]:
                    self.violation(name, f"a new generation was stored while {kind}")
            # Disabled first: Toxiproxy removes a toxic only once the connections it holds have drained.
            # Even so, a link cut mid-transfer holds the removal 5 s per stuck write (Toxiproxy logs
            # "Could not write last packets after interrupt to Output"): more than the client's 5 s.
            self.git_proxy.disable()
            cleared = time.monotonic()
            Proxy(
                ToxiproxyAPI(self.git_proxy.api.base_url, timeout=120.0), self.git_proxy.name, ""
            ).clear_toxics()
            self.toxic_removal_s.append(round(time.monotonic() - cleared, 1))
            self.git_proxy.enable()
        elif kind == "operator-sigkill":
            self.commit_and_trigger(during)
            time.sleep(self.rng.uniform(0.0, 2.0))
            self.operator.kill()
            self.operator.start()
            self.operator_restarts += 1
        elif kind.startswith("data-"):
            views = retrying(self.storage)
            if kind == "data-part-deleted":
                split = [n for n in self.names if views[n].parts]
                victim = self.rng.choice(split or self.names)
                target = self.rng.choice(views[victim].parts or (f"{victim}-data",))
            else:
                victim = self.rng.choice(self.names)
                target = f"{victim}-data"
            self.kube.core.delete_namespaced_config_map(target, NAMESPACE)
            print(f"  deleted ConfigMap {target}", file=sys.stderr)
            self.commit_and_trigger([n for n in during if n != victim])
            self.hold(1.0, skip=frozenset({victim}))
            return frozenset({victim})
        elif kind == "source-change":
            for name in during:
                self.commit(name)
        else:
            raise ValueError(f"unknown fault {kind}")
        return frozenset()

    def run_round(self, kind: str, converge_timeout: float) -> dict[str, Any]:
        self.round += 1
        self.kind = kind
        during = self.rng.sample(self.names, self.rng.randint(1, max(1, len(self.names) // 2)))
        started = time.monotonic()
        untriggered = self.apply(kind, during)
        ended = time.monotonic()
        self.trigger([n for n in self.names if n not in untriggered])
        elapsed = self.wait_converged(ended, converge_timeout)
        if self.operator.process is None or self.operator.process.poll() is not None:
            self.operator_problems()
        self.check()
        record = {
            "round": self.round,
            "kind": kind,
            "registries_committed_during_fault": len(during),
            "fault_s": round(ended - started, 1),
            "converged_s": None if elapsed is None else round(elapsed, 2),
        }
        shown = "NOT converged" if elapsed is None else f"converged {elapsed:.1f} s"
        print(
            f"round {self.round} {kind}: {len(during)} committed during the fault "
            f"({ended - started:.1f} s), {shown} after it ended",
            file=sys.stderr,
        )
        return record


def registry_spec(url: str, api: bool) -> dict[str, Any]:
    spec = git_spec(url)
    return {**spec, "api": {"replicas": 1}} if api else no_api(spec)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--registries", type=int, default=20)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--converge-timeout", type=float, default=60.0, help="seconds per round")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    rng = random.Random(seed)
    mode = node_mode()
    kinds = FAULT_KINDS + (REAL_NODE_KINDS if mode == "real" else ())
    work = Path(tempfile.mkdtemp(prefix="mcpreg-soak-"))
    (work / "git").mkdir()
    print(f"fault soak: seed {seed}, node {mode}, work dir {work}", file=sys.stderr)

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    run = Run(args=args, seed=seed, mode=mode)
    cp = ControlPlane.create(with_kwok=mode == "kwok", with_node=mode == "real", progress=progress)
    cp.start()
    assert cp.pki is not None
    operator: OperatorProcess | None = None
    toxiproxy = ToxiproxyServer(log_path=work / "toxiproxy.log")
    api_proxy = HTTPFaultProxy.for_kubeconfig(cp.admin_kubeconfig, cp.pki, work / "httpfault", seed=seed)
    git_daemon = GitDaemonServer(work / "git")
    try:
        kube = Kube(cp, config.new_client_from_config(config_file=str(cp.admin_kubeconfig)))
        kube.kubectl("apply", "--server-side", "-f", str(CRD_FILE))
        kube.kubectl("wait", "--for=condition=Established", f"crd/{PLURAL}.{GROUP}")
        kube.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))
        image = KWOK_IMAGE
        if cp.node is not None:  # API pods really run: the product's image, imported into the node
            from mcpreg_dev.image import ensure_product_image

            built = ensure_product_image(progress)
            cp.node.import_image(built.archive)
            image = built.ref
        toxiproxy.start()
        api_proxy.start()
        git_daemon.start()
        git_proxy = toxiproxy.api.create_proxy("git", f"127.0.0.1:{git_daemon.port}")
        operator = start_operator(
            api_proxy.write_kubeconfig(work / "operator.kubeconfig"), NAMESPACE, work / "operator.log", image
        )
        run.sampler = RssSampler(operator, time.monotonic())
        run.sampler.start()
        repos = {f"reg-{i}": create_bare_repo(work / "git", f"reg-{i}") for i in range(args.registries)}
        soak = run.soak = Soak(
            kube=kube,
            cp=cp,
            operator=operator,
            api_proxy=api_proxy,
            git_proxy=git_proxy,
            repos=repos,
            rng=rng,
        )
        sizes = {
            name: SPLIT_SERVERS if i % 5 == 0 else rng.randint(200, 3000) for i, name in enumerate(repos)
        }
        created = time.monotonic()
        for name, repo in repos.items():
            soak.commit(name, sizes[name])
            url = git_daemon.url(repo).replace(f"127.0.0.1:{git_daemon.port}", git_proxy.listen)
            soak.registries.create(name, registry_spec(url, api=cp.node is not None))
        initial = soak.wait_converged(created, max(120.0, 10.0 * args.registries))
        soak.check()
        views = soak.storage()
        run.setup = {
            "servers_per_registry": sizes,
            "split_registries": sorted(n for n, v in views.items() if v.parts),
            "initial_sync_s": None if initial is None else round(initial, 1),
        }
        print(
            f"{args.registries} registries Ready in {run.setup['initial_sync_s']} s "
            f"(split into parts: {', '.join(run.setup['split_registries']) or 'none'})",
            file=sys.stderr,
        )
        run.started = time.monotonic()
        deadline = run.started + args.minutes * 60
        deck: list[str] = []
        while time.monotonic() < deadline:
            if not deck:
                deck = list(kinds)
                rng.shuffle(deck)
            run.rounds.append(soak.run_round(deck.pop(), args.converge_timeout))
    except KeyboardInterrupt:
        run.stopped_by = "interrupted"
    except Exception:
        traceback.print_exc()
        run.stopped_by = f"bench error: {traceback.format_exc().strip().splitlines()[-1]}"
    finally:
        run.ended = time.monotonic()
        if run.sampler is not None:
            run.sampler.done.set()
        if operator is not None:
            operator.stop()
        api_proxy.stop()
        toxiproxy.stop()
        git_daemon.stop()
        keep = bool(run.violations) or run.stopped_by is not None
        kept = cp.stop(keep_logs=keep)

    results = run.report()
    if kept is not None:
        print(f"control-plane logs kept in {kept}", file=sys.stderr)
    if keep:
        print(f"operator log and work dir kept in {work}", file=sys.stderr)
    else:
        shutil.rmtree(work, ignore_errors=True)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 2 if run.stopped_by and run.stopped_by != "interrupted" else 1 if run.violations else 0


@dataclass
class Run:
    """What one soak did, for the summary."""

    args: argparse.Namespace
    seed: int
    mode: str
    setup: dict[str, Any] = field(default_factory=dict)
    rounds: list[dict[str, Any]] = field(default_factory=list)
    soak: Soak | None = None
    sampler: RssSampler | None = None
    started: float | None = None  # the first round's start (after set-up)
    ended: float = 0.0
    stopped_by: str | None = None  # None: the time was up

    @property
    def violations(self) -> list[Violation]:
        return self.soak.violations if self.soak is not None else []

    def report(self) -> dict[str, Any]:
        """Print the summary; the results as JSON-ready data."""
        args, soak = self.args, self.soak
        soak_s = self.ended - self.started if self.started is not None else 0.0
        by_kind: dict[str, list[float]] = {}
        faults: dict[str, int] = {}
        for record in self.rounds:
            faults[record["kind"]] = faults.get(record["kind"], 0) + 1
            if record["converged_s"] is not None:
                by_kind.setdefault(record["kind"], []).append(record["converged_s"])
        convergence = {kind: summary(values) for kind, values in sorted(by_kind.items())}
        every = [value for values in by_kind.values() for value in values]
        violations = [asdict(v) for v in self.violations]
        samples = self.sampler.samples if self.sampler is not None else []
        offset = self.started - self.sampler.started if self.sampler and self.started else 0.0
        rss: dict[str, Any] = {"samples": len(samples)}
        if samples:
            rss |= {
                "max_mib": round(max(s[1] for s in samples) / 1024, 1),
                "max_with_children_mib": round(max(s[2] for s in samples) / 1024, 1),
                "end_mib": round(samples[-1][1] / 1024, 1),
                # One point every ~30 s: seconds since the first round (negative: set-up), MiB.
                "over_time_mib": [[round(t - offset), round(m / 1024, 1)] for t, m, _ in samples[::30]],
            }
        results: dict[str, Any] = {
            "config": {
                "minutes": args.minutes,
                "registries": args.registries,
                "seed": self.seed,
                "node": self.mode,
                "converge_timeout_s": args.converge_timeout,
                "git_timeout_s": GIT_TIMEOUT_S,
            },
            "stopped_by": self.stopped_by or "time up",
            "setup": self.setup,
            "soak_s": round(soak_s, 1),
            "rounds": len(self.rounds),
            "faults_by_kind": dict(sorted(faults.items())),
            "convergence_s": convergence,
            "convergence_all_s": summary(every) if every else None,
            "not_converged_rounds": sum(1 for r in self.rounds if r["converged_s"] is None),
            "violations": violations,
            "operator_restarts": soak.operator_restarts if soak is not None else 0,
            "toxiproxy_toxic_removal_s": soak.toxic_removal_s if soak is not None else [],
            "operator_rss": rss,
            "round_log": self.rounds,
        }
        stopped = f" ({self.stopped_by})" if self.stopped_by else ""
        print(
            f"\nfault soak: {len(self.rounds)} rounds in {soak_s / 60:.1f} min, {args.registries} "
            f"registries ({self.mode}), seed {self.seed}{stopped}"
        )
        print(
            f"initial sync: {self.setup.get('initial_sync_s')} s; "
            f"split into parts: {', '.join(self.setup.get('split_registries') or []) or 'none'}"
        )
        print("convergence after the fault ended (s):")
        print(f"  {'fault':<24} {'n':>3} {'median':>7} {'p90':>7} {'max':>7}")
        for kind in sorted(faults):
            c = convergence.get(kind)
            if c is None:
                print(f"  {kind:<24} {faults[kind]:>3} {'never converged':>23}")
            else:
                print(f"  {kind:<24} {faults[kind]:>3} {c['median']:>7} {c['p90']:>7} {c['max']:>7}")
        if every:
            c = summary(every)
            print(f"  {'(every fault)':<24} {c['n']:>3} {c['median']:>7} {c['p90']:>7} {c['max']:>7}")
        print(f"violations: {len(violations) or 'none'}")
        for v in violations:
            first = v["what"].splitlines()[0] if v["what"] else ""
            print(f"  round {v['round']} {v['kind']} {v['registry']}: {first[:300]}")
        if samples:
            print(
                f"operator RSS: max {rss['max_mib']} MiB (with its children {rss['max_with_children_mib']}"
                f" MiB), at the end {rss['end_mib']} MiB; {results['operator_restarts']} restarts"
            )
            points = ", ".join(f"{t}: {m}" for t, m in rss["over_time_mib"])
            print(f"  over time (s since the first round: MiB): {points}")
        if results["toxiproxy_toxic_removal_s"]:
            print(f"Toxiproxy git toxic removal per git fault (s): {results['toxiproxy_toxic_removal_s']}")
        return results


if __name__ == "__main__":
    sys.exit(main())
