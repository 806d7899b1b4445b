"""Build the real control-plane binaries from Go modules, once, and cache them by version.

The versions are pinned in exactly one place: the `go.mod` files of the small Go modules under
`tools/` (`tools/kube` requires k8s.io/kubernetes with a replace for every staging module;
`tools/etcd` requires go.etcd.io/etcd/server/v3; `tools/toxiproxy` requires
github.com/Shopify/toxiproxy/v2). Binaries land in
`$MCPREG_CACHE_DIR/bin/<component>-<version>/` (default `~/.cache/mcp-registry-operator`), built in a
temporary directory and renamed into place, so an interrupted build never leaves a half-written cache.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS_DIR = Path(os.environ.get("MCPREG_TOOLS_DIR", REPO_ROOT / "tools"))


_T = TypeVar("_T")


class BuildError(RuntimeError):
    """A binary could not be built; the message is one line saying what to do."""


def built(make: Callable[[], _T]) -> _T | None:
    """`make()` for a `python -m` entry point: on a BuildError its message on stderr, and None."""
    try:
        return make()
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def print_built(*makers: Callable[[], object]) -> int:
    """A `python -m` entry point that builds (or finds) things and prints each path: its exit code."""
    for make in makers:
        made = built(make)
        if made is None:
            return 1
        print(made)
    return 0


def serve_cli(prog: str, serve_help: str) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """(parser, its `serve` subcommand's parser) of a `python -m` entry point for a server binary: run
    without a command, it prints the binary's path; with `serve`, it runs the server in the foreground."""
    parser = argparse.ArgumentParser(prog=prog)
    serve = parser.add_subparsers(dest="command").add_parser("serve", help=serve_help)
    return parser, serve


def print_or_exec(ensure: Callable[[], Path], serve: bool, argv: Callable[[Path], list[str]]) -> int:
    """Build (or find) a binary: print its path, or with `serve` replace this process by `argv(binary)`."""
    binary = built(ensure)
    if binary is None:
        return 1
    if not serve:
        print(binary)
        return 0
    os.execv(binary, argv(binary))  # noqa: S606


@dataclass(frozen=True)
class GoComponent:
    """A set of commands built from one of the project's pinning Go modules (`tools/<module>`)."""

    name: str  # cache key prefix and progress label
    pinned_module: str  # the module whose version names the cache entry; "" for the project's own code
    packages: tuple[str, ...]  # Go import paths of the commands to build
    module: str = ""  # the pinning module's directory under tools/, when not named like the component

    @property
    def module_dir(self) -> Path:
        return TOOLS_DIR / (self.module or self.name)

    @property
    def version(self) -> str:
        if not self.pinned_module:
            return source_version(self.module_dir)
        return pinned_version(self.module_dir / "go.mod", self.pinned_module)

    @property
    def commands(self) -> tuple[str, ...]:
        return tuple(
            pkg.rstrip("/").rsplit("/", 1)[-1] if "/cmd/" in pkg else self.name for pkg in self.packages
        )


_KUBE_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
KUBERNETES = GoComponent(
    "kubernetes", "k8s.io/kubernetes", tuple(f"k8s.io/kubernetes/cmd/{c}" for c in _KUBE_COMMANDS), "kube"
)
# The node: a real kubelet and kube-proxy from the same pin, cached apart from the control plane so
# that machines where no node can run (no root, no containerd) never build them.
KUBERNETES_NODE = GoComponent(
    "kubernetes-node",
    "k8s.io/kubernetes",
    ("k8s.io/kubernetes/cmd/kubelet", "k8s.io/kubernetes/cmd/kube-proxy"),
    "kube",
)
# Cluster DNS: CoreDNS with only the plugins `tools/coredns/main.go` names (no forward plugin).
COREDNS = GoComponent("coredns", "github.com/coredns/coredns", ("mcpregistry.dev/tools/coredns",))
ETCD = GoComponent("etcd", "go.etcd.io/etcd/server/v3", ("go.etcd.io/etcd/server/v3",))
HELM = GoComponent("helm", "helm.sh/helm/v4", ("helm.sh/helm/v4/cmd/helm",))
# The real `cosign` client: the signing tests prove with it that what the operator signs verifies
# with `cosign verify-blob`, and that what `cosign sign-blob` signs verifies with our code.
COSIGN = GoComponent("cosign", "github.com/sigstore/cosign/v2", ("github.com/sigstore/cosign/v2/cmd/cosign",))
# kwok plays the kubelet: it keeps fake nodes Ready and moves scheduled pods to Running/Ready, so
# Deployments report real status without containers (there is no container runtime here).
KWOK = GoComponent("kwok", "sigs.k8s.io/kwok", ("sigs.k8s.io/kwok/cmd/kwok",))
# The fault-injection tests' TCP fault proxy (mcpreg_dev.faultproxy): Toxiproxy's server through
# `tools/toxiproxy/main.go`, which differs from upstream's cmd/server only in exiting when its API
# cannot listen.
TOXIPROXY = GoComponent("toxiproxy", "github.com/Shopify/toxiproxy/v2", ("mcpregistry.dev/tools/toxiproxy",))
# The official MCP Registry's server (its `cmd/registry`), a real upstream for the API-mirror tests
# (mcpreg_dev.official_registry), run against a throw-away PostgreSQL (mcpreg_dev.postgres).
_REGISTRY_MODULE = "github.com/modelcontextprotocol/registry"
OFFICIAL_REGISTRY = GoComponent("mcp-registry", _REGISTRY_MODULE, (f"{_REGISTRY_MODULE}/cmd/registry",))
# The pod sandbox's pause process (tools/pause/main.go, no dependencies), packaged by devenv.image; its
# version is a hash of its own source.
PAUSE = GoComponent("pause", "", ("mcpregistry.dev/tools/pause",))

# The variable each upstream's own Makefile stamps with the version (`-X`), so the binary tells it.
_VERSION_VARIABLES = {
    PAUSE: "main.version",
    HELM: "helm.sh/helm/v4/internal/version.version",  # `helm version`
    COSIGN: "sigs.k8s.io/release-utils/version.gitVersion",  # `cosign version`
    TOXIPROXY: "github.com/Shopify/toxiproxy/v2.Version",  # `toxiproxy --version`
    OFFICIAL_REGISTRY: "main.Version",  # /v0.1/version
}


def cache_dir() -> Path:
    return Path(os.environ.get("MCPREG_CACHE_DIR", Path.home() / ".cache" / "mcp-registry-operator"))


def pinned_version(go_mod: Path, module: str) -> str:
    """The version `go_mod` requires of `module` (the single place versions are pinned)."""
    try:
        text = go_mod.read_text()
    except OSError as exc:
        raise BuildError(
            f"cannot read {go_mod}: {exc.strerror}; is this a full checkout of the project?"
        ) from exc
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", text, re.MULTILINE)
    if not match:
        raise BuildError(f"{go_mod} does not require {module}; restore it from git")
    return match.group(1)


def source_version(module_dir: Path) -> str:
    """A version for a module of the project's own code: the first 12 hex digits of a hash of its files."""
    try:
        files = sorted(p for p in module_dir.rglob("*") if p.is_file())
        digest = hashlib.sha256()
        for path in files:
            data = path.read_bytes()
            digest.update(f"{path.relative_to(module_dir).as_posix()}\0{len(data)}\0".encode())
            digest.update(data)
    except OSError as exc:
        raise BuildError(
            f"cannot read {module_dir}: {exc.strerror}; is this a full checkout of the project?"
        ) from exc
    if not files:
        raise BuildError(f"{module_dir} is empty or missing; restore it from git")
    return digest.hexdigest()[:12]


def _ldflags(component: GoComponent) -> str:
    if component in _VERSION_VARIABLES:
        return f"-s -w -X {_VERSION_VARIABLES[component]}={component.version}"
    if component.pinned_module != KUBERNETES.pinned_module:
        return "-s -w"
    version = component.version
    major, minor = version.lstrip("v").split(".")[:2]
    flags = ["-s", "-w"]
    # Stamp the version the way Kubernetes' own build does, so /version and `kubectl version` tell it.
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate=1970-01-01T00:00:00Z",
        ]
    return " ".join(flags)


def component_dir(component: GoComponent) -> Path:
    return cache_dir() / "bin" / f"{component.name}-{component.version}"


def _is_complete(directory: Path, component: GoComponent) -> bool:
    return all(os.access(directory / cmd, os.X_OK) for cmd in component.commands)


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    # Two test sessions (or a test run and `make up`) must not build the same thing at once.
    lock_path = cache_dir() / "build.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    # Never download another toolchain: this machine's Go builds these modules.
    env.setdefault("GOTOOLCHAIN", "local")
    env.setdefault("CGO_ENABLED", "0")
    # -buildvcs=false: a main package of the project's own (tools/pause) must not embed the checkout's
    # commit, or the same source would build different binaries (and images) at every commit.
    env["GOFLAGS"] = (env.get("GOFLAGS", "") + " -mod=readonly -trimpath -buildvcs=false").strip()
    return env


def _find_go() -> str:
    go = shutil.which("go")
    if go is None:
        raise BuildError(
            "Go is not installed (no `go` on PATH): install Go 1.26 or newer, or set MCPREG_BIN_DIR to a "
            "directory holding etcd, kube-apiserver, kube-controller-manager and kubectl"
        )
    return go


def _count_packages(go: str, component: GoComponent, env: dict[str, str]) -> int | None:
    try:
        out = subprocess.run(
            [go, "list", "-deps", *component.packages],
            cwd=component.module_dir,
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=900,
        ).stdout
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return None  # progress then shows a count without a total; the build itself will explain failures
    return len(out.splitlines())


def _build(component: GoComponent, target: Path, progress: Callable[[str], None]) -> None:
    go = _find_go()
    env = _go_env()
    label = f"{component.name} {component.version}"
    progress(f"building {label} from Go modules (first time only; several minutes on 2 cores)…")
    started = time.monotonic()
    total = _count_packages(go, component, env)
    staging = Path(tempfile.mkdtemp(prefix=f".{component.name}-", dir=target.parent))
    try:
        # One package: name the output file (etcd's main package is its module root, which Go would
        # name "server"); several: a directory, where each binary takes its command's name.
        output = str(staging / component.commands[0]) if len(component.packages) == 1 else f"{staging}/"
        cmd = [go, "build", "-v", "-ldflags", _ldflags(component), "-o", output, *component.packages]
        proc = subprocess.Popen(
            cmd,
            cwd=component.module_dir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        compiled = 0
        tail: list[str] = []
        last_report = 0.0
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            tail = [*tail[-30:], line]
            # `go build -v` names each package as it compiles it; errors come as other lines.
            if re.fullmatch(r"[\w.\-/~]+", line):
                compiled += 1
            now = time.monotonic()
            if now - last_report >= 10:
                last_report = now
                of_total = f"/{total}" if total else ""
                progress(f"  {label}: {compiled}{of_total} packages compiled, {now - started:.0f}s")
        code = proc.wait()
        if code != 0:
            detail = " | ".join(t for t in tail if t and not re.fullmatch(r"[\w.\-/~]+", t))[-600:]
            raise BuildError(
                f"building {label} failed (go build exit {code}): {detail or 'see output above'}"
            )
        if not _is_complete(staging, component):
            raise BuildError(f"building {label} produced no {', '.join(component.commands)} in {staging}")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
        progress(f"built {label} in {time.monotonic() - started:.0f}s → {target}")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def stderr_progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ensure_component(component: GoComponent, progress: Callable[[str], None] = stderr_progress) -> Path:
    """Directory holding the component's binaries, building them first when not cached."""
    target = component_dir(component)
    if _is_complete(target, component):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _build_lock():
        if not _is_complete(target, component):  # another process may have built it while we waited
            _build(component, target, progress)
    return target


def ensure_command(
    component: GoComponent, override_var: str, title: str, progress: Callable[[str], None] = stderr_progress
) -> Path:
    """Path of the component's command, built from Go modules on first use; the environment variable
    `override_var` names a ready one instead (`title` names the component in the error about it)."""
    override = os.environ.get(override_var)
    if override:
        if not os.access(override, os.X_OK):
            raise BuildError(
                f"{override_var}={override} is not an executable; unset it to build {title} from Go"
            )
        return Path(override)
    return ensure_component(component, progress) / component.commands[0]


def ensure_helm(progress: Callable[[str], None] = stderr_progress) -> Path:
    """Path of the real `helm` binary, built from Go modules on first use; `MCPREG_HELM` names a ready one."""
    return ensure_command(HELM, "MCPREG_HELM", "helm", progress)


def ensure_toxiproxy(progress: Callable[[str], None] = stderr_progress) -> Path:
    """Path of the Toxiproxy server, built from Go modules on first use (well under a minute on 2 cores);
    `MCPREG_TOXIPROXY` names a ready one."""
    return ensure_command(TOXIPROXY, "MCPREG_TOXIPROXY", "Toxiproxy", progress)


def ensure_cosign(progress: Callable[[str], None] = stderr_progress) -> Path:
    """Path of the real `cosign` binary, built from Go modules on first use; `MCPREG_COSIGN` names a
    ready one."""
    return ensure_command(COSIGN, "MCPREG_COSIGN", "cosign", progress)


def ensure_official_registry(progress: Callable[[str], None] = stderr_progress) -> Path:
    """Path of the official MCP Registry's server, built from Go modules on first use (about a minute
    and a half on 2 cores from an empty module cache); `MCPREG_OFFICIAL_REGISTRY` names a ready one."""
    return ensure_command(OFFICIAL_REGISTRY, "MCPREG_OFFICIAL_REGISTRY", "the official registry", progress)


@dataclass(frozen=True)
class ControlPlaneBinaries:
    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kubectl: Path
    kubernetes_version: str
    kube_scheduler: Path | None = None
    kwok: Path | None = None


def ensure_binaries(progress: Callable[[str], None] = stderr_progress) -> ControlPlaneBinaries:
    """Paths of all control-plane binaries, built from Go modules on first use.

    `MCPREG_BIN_DIR` overrides the build with a directory of ready binaries.
    """
    override = os.environ.get("MCPREG_BIN_DIR")
    if override:
        bin_dir = Path(override)
        names = ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl")
        missing = [n for n in names if not os.access(bin_dir / n, os.X_OK)]
        if missing:
            raise BuildError(
                f"MCPREG_BIN_DIR={bin_dir} lacks {', '.join(missing)}; unset it to build from Go"
            )
        return ControlPlaneBinaries(
            etcd=bin_dir / "etcd",
            kube_apiserver=bin_dir / "kube-apiserver",
            kube_controller_manager=bin_dir / "kube-controller-manager",
            kubectl=bin_dir / "kubectl",
            kubernetes_version="unknown",
        )
    # One build after the other: two Go builds at once only thrash a small machine's cores.
    etcd_dir = ensure_component(ETCD, progress)
    kube_dir = ensure_component(KUBERNETES, progress)
    kwok_dir = ensure_component(KWOK, progress)
    return ControlPlaneBinaries(
        etcd=etcd_dir / "etcd",
        kube_apiserver=kube_dir / "kube-apiserver",
        kube_controller_manager=kube_dir / "kube-controller-manager",
        kubectl=kube_dir / "kubectl",
        kubernetes_version=KUBERNETES.version,
        kube_scheduler=kube_dir / "kube-scheduler",
        kwok=kwok_dir / "kwok",
    )


def main() -> int:
    """`python -m mcpreg_dev.binaries`: build (or find) the binaries and print where they are."""
    from mcpreg_dev.node import node_mode

    try:
        binaries = ensure_binaries()
        helm = ensure_helm()  # the chart's tests run the real helm
        toxiproxy = ensure_toxiproxy()  # the fault-injection tests' TCP fault proxy
        cosign = ensure_cosign()  # the signing tests' interoperability proof
        official_registry = ensure_official_registry()  # the API-mirror tests' real upstream
        if node_mode() == "real":  # the node's own components, where one can run
            ensure_component(KUBERNETES_NODE)
            ensure_component(COREDNS)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for field in ("etcd", "kube_apiserver", "kube_controller_manager", "kubectl"):
        print(getattr(binaries, field))
    print(helm)
    print(toxiproxy)
    print(cosign)
    print(official_registry)
    return 0


if __name__ == "__main__":
    sys.exit(main())
