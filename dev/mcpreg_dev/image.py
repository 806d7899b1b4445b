"""Build the product's OCI image, and the pause image of the local node's pod sandboxes, without Docker.

The product image is three layers, each built and cached on its own:

  base     Debian 12 from Debian's packages: `mmdebstrap --variant=essential bookworm` with python3, git
           (the operator's git source runs it), gpgv and ssh-keygen (they check commit signatures) and
           ca-certificates; no docs, man pages or locales; the
           `nonroot` user (65532). The package versions are exactly those this machine's apt lists name
           (the lists are copied in, nothing is updated): `apt-get update` on the host moves the base on.
  deps     `[project].dependencies` of pyproject.toml (exact pins; pip resolves what they need), installed
           by the host's pip with `--target /usr/local/lib/python3.11/dist-packages --platform
           manylinux2014_x86_64 --only-binary=:all:`; no scripts.
  product  the project's wheel (which leaves the development code out: see pyproject's wheel `exclude`)
           and a /usr/local/bin/mcpreg entry script.

.pyc files are precompiled with `--invalidation-mode unchecked-hash` (the root filesystem is read-only in
the pods, and the result is reproducible). Layer tars are written here with sorted entries, numeric owners
and fixed mtimes; umoci assembles the OCI layout and config (fixed timestamps only), and skopeo writes the
OCI archive that `ctr -n k8s.io images import` takes: containerd names the image after the archive's
`org.opencontainers.image.ref.name` annotation when it is a full reference, as here. Same inputs, same
manifest digest.

Everything lives under `$MCPREG_CACHE_DIR/images/`, keyed by a hash of every input (this file, the tools'
versions, the host's Debian apt lists, the pins, the product's sources), each layer on its own, so a change
of product code rebuilds only the product layer. The Dockerfile builds the same image with Docker;
tests/unit/deploy/test_image_agreement.py keeps the two in step.

    python -m mcpreg_dev.image [--pause] [--json]     # or: make image
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import email.utils
import fcntl
import hashlib
import importlib.metadata
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from mcpreg_dev.binaries import PAUSE, BuildError, cache_dir, ensure_component, stderr_progress

REPO_ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = REPO_ROOT / "pyproject.toml"

Progress = Callable[[str], None]

# --- what the image is (the Dockerfile must say the same: tests/unit/deploy/test_image_agreement.py) -----

PRODUCT_REPOSITORY = "mcpreg.local/mcp-registry-operator"
PAUSE_REPOSITORY = "mcpreg.local/pause"

DEBIAN_RELEASE = "12"
DEBIAN_SUITE = "bookworm"
DEBIAN_SUITES = ("bookworm", "bookworm-updates", "bookworm-security")
DEBIAN_COMPONENT = "main"
DEBIAN_ARCHITECTURE = "amd64"
DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
# gpgv and ssh-keygen (openssh-client) check the signatures of synced commits (source.git.verify).
DEBIAN_PACKAGES = ("python3", "git", "ca-certificates", "gpgv", "openssh-client")
MMDEBSTRAP_VARIANT = "essential"  # Essential: yes and the packages above; no apt, no init
DPKG_OPTIONS = (
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",  # the licences travel with the binaries
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
    "path-exclude=/usr/share/lintian/*",
)

PYTHON_VERSION = "3.11"  # Debian 12's python3
SITE_PACKAGES = f"/usr/local/lib/python{PYTHON_VERSION}/dist-packages"
PIP_TARGET_OPTIONS = (
    "--platform",
    "manylinux2014_x86_64",
    "--python-version",
    PYTHON_VERSION,
    "--implementation",
    "cp",
    "--only-binary=:all:",
)
ENTRY_SCRIPT = "/usr/local/bin/mcpreg"
ENTRY_SCRIPT_TEXT = "#!/usr/bin/python3\nimport sys\n\nfrom mcpreg_cli.main import main\n\nsys.exit(main())\n"

USER_NAME = "nonroot"
UID = GID = 65532
USER = f"{UID}:{GID}"
USER_HOME = "/tmp"  # noqa: S108 (a path inside the image: its emptyDir)
USER_SHELL = "/usr/sbin/nologin"
ENTRYPOINT = ("mcpreg",)
CMD = ("operator",)
EXPOSED_PORTS = ("8080/tcp", "8081/tcp")  # registry API (mcpreg serve); the operator's health endpoint
WORKING_DIR = "/tmp"  # noqa: S108
ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",  # umoci would leave none
    "HOME": "/tmp",  # noqa: S108 (read-only root filesystem in the chart's pods; /tmp is an emptyDir)
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
}
LABELS = {
    "org.opencontainers.image.title": "mcp-registry-operator",
    "org.opencontainers.image.description": "MCPRegistry operator and registry API",
    "org.opencontainers.image.licenses": "Apache-2.0",
    "org.opencontainers.image.source": "https://github.com/mcp-registry-operator/mcp-registry-operator",
}
OS = "linux"
ARCHITECTURE = "amd64"

PAUSE_PATH = "/pause"
PAUSE_USER = "65535:65535"

# Every file of the layers built here gets this mtime (2020-02-02, hatchling's reproducible wheel date);
# the base keeps the dates of Debian's packages, clamped to the date of the apt lists it came from.
FIXED_MTIME = 1580601600
HOST_PACKAGES = ("mmdebstrap", "umoci", "skopeo")  # Debian packages of the tools used here
KEEP_PER_KIND = 3  # cache entries of each kind kept (the most recently used ones)


@dataclass(frozen=True)
class BuiltImage:
    """An image in the cache, as an OCI archive ready for `ctr -n k8s.io images import`."""

    ref: str  # e.g. mcpreg.local/mcp-registry-operator:<first 12 hex of the content key>
    archive: Path  # OCI archive carrying `ref` as its org.opencontainers.image.ref.name
    digest: str  # the manifest's, sha256:…
    compressed_size: int  # bytes of the layer blobs, the config and the manifest
    build_seconds: float  # 0 when it came from the cache
    uncompressed_size: int  # bytes of the layer tars (the root filesystem, with tar headers)
    layers: tuple[str, ...]  # digests of the compressed layer blobs, base first
    config_digest: str

    @property
    def repository(self) -> str:
        return self.ref.rsplit(":", 1)[0]

    @property
    def tag(self) -> str:
        return self.ref.rsplit(":", 1)[1]

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["archive"] = str(self.archive)
        data["layers"] = list(self.layers)
        return data


def images_cache_dir() -> Path:
    return cache_dir() / "images"


# --- running tools ---------------------------------------------------------------------------------------


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BuildError(
            f"{name} not installed: run scripts/install-host-deps "
            f"(Debian packages {', '.join(HOST_PACKAGES)})"
        )
    return path


def _tail(output: str, limit: int = 600) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if re.match(r"(E:|ERROR|error|fatal)", line, re.IGNORECASE)]
    text = " | ".join((errors or lines)[-4:])
    return text[-limit:] or "no output"


def _run(
    cmd: Sequence[str],
    *,
    what: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 1800,
    hint: str = "",
) -> str:
    """Run a command; a failure becomes a one-line BuildError with the end of its output."""
    try:
        proc = subprocess.run(
            list(cmd),
            env=dict(env) if env is not None else None,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise BuildError(f"{what}: {cmd[0]} not found: run scripts/install-host-deps") from exc
    except subprocess.TimeoutExpired as exc:
        raise BuildError(f"{what} took longer than {timeout:.0f}s and was stopped") from exc
    if proc.returncode != 0:
        raise BuildError(f"{what} failed (exit {proc.returncode}): {_tail(proc.stderr + proc.stdout)}{hint}")
    return proc.stdout


def _stream(
    cmd: Sequence[str],
    *,
    what: str,
    env: Mapping[str, str],
    progress: Progress,
    show: Callable[[str], str | None],
    hint: str = "",
) -> None:
    """Run a long command, passing the lines `show` picks on as progress. It runs in a process group of
    its own, so that an interruption stops all of it (mmdebstrap's dpkg in the chroot too)."""
    proc = subprocess.Popen(
        list(cmd),
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    tail: list[str] = []
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip()
            tail = [*tail[-40:], line]
            shown = show(line)
            if shown:
                progress(shown)
        code = proc.wait()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    if code != 0:
        raise BuildError(f"{what} failed (exit {code}): {_tail(chr(10).join(tail))}{hint}")


@cache
def _tool_version(name: str, *args: str) -> str:
    return _run([_tool(name), *args], what=f"{name} {' '.join(args)}").strip().splitlines()[0]


@cache
def _python311() -> tuple[str, str]:
    """A Python 3.11 of the host (Debian's first) to compile the image's .pyc files; its version."""
    candidates = ["/usr/bin/python3.11", sys.executable, shutil.which("python3.11") or ""]
    for candidate in candidates:
        if not candidate or not os.access(candidate, os.X_OK):
            continue
        version = _run([candidate, "-c", "import sys; print(sys.version)"], what=f"{candidate} --version")
        if version.startswith(f"{PYTHON_VERSION}."):
            return candidate, version.strip()
    raise BuildError(
        f"no Python {PYTHON_VERSION} on this machine to compile the image's .pyc files: "
        f"apt-get install python{PYTHON_VERSION}-minimal"
    )


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@cache
def _own_source() -> str:
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


# --- deterministic layer tars ----------------------------------------------------------------------------


def write_layer_tar(
    root: Path,
    out: Path,
    *,
    mtime: int,
    keep_owners: bool,
    skip_contents_of: frozenset[str] = frozenset(),
) -> None:
    """Tar everything under `root` reproducibly: a fixed walk order, numeric owners and no names, mtimes
    clamped to `mtime` (set to it unless `keep_owners`, which also keeps owners and modes as they are;
    otherwise everything is root's, 0755 for directories and executables, 0644 for the rest)."""
    with out.open("wb") as handle, tarfile.open(fileobj=handle, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            here = Path(dirpath)
            rel = here.relative_to(root).as_posix()
            if rel in skip_contents_of:
                dirnames.clear()
                continue
            for name in sorted([*dirnames, *filenames]):
                path = here / name
                arcname = name if rel == "." else f"{rel}/{name}"
                info = tar.gettarinfo(str(path), arcname)
                if info is None:  # a socket
                    continue
                info.uname = info.gname = ""
                if keep_owners:
                    info.mtime = min(int(info.mtime), mtime)
                else:
                    info.mtime = mtime
                    info.uid = info.gid = 0
                    if info.isdir() or ((info.isreg() or info.islnk()) and info.mode & 0o111):
                        info.mode = 0o755
                    elif info.isreg() or info.islnk():
                        info.mode = 0o644
                if info.isreg():
                    with path.open("rb") as data:
                        tar.addfile(info, data)
                else:
                    tar.addfile(info)


# --- the cache --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _lock(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with (root / "build.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _mounts_below(path: Path) -> list[str]:
    prefix = str(path.resolve()) + "/"
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    return [p for p in (line.split()[4] for line in lines) if (p + "/").startswith(prefix)]


@contextlib.contextmanager
def _staging(root: Path, label: str) -> Iterator[Path]:
    """A fresh directory under the cache to build in; removed afterwards (unless something is mounted
    in it: then it is left alone, never deleted through a mount)."""
    (root / "tmp").mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=root / "tmp"))
    try:
        yield staging
    finally:
        if _mounts_below(staging):
            print(f"warning: {staging} still has mounts; not removing it", file=sys.stderr)
        else:
            shutil.rmtree(staging, ignore_errors=True)


def _install(staging_entry: Path, target: Path) -> None:
    """Move a finished entry into place in one rename."""
    if target.exists():
        shutil.rmtree(target)
    staging_entry.rename(target)


def _prune(parent: Path, prefix: str, keep: int = KEEP_PER_KIND) -> None:
    entries = sorted(
        (p for p in parent.glob(f"{prefix}-*") if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True
    )
    for old in entries[keep:]:
        shutil.rmtree(old, ignore_errors=True)


def _touch(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.utime(path)


@dataclass(frozen=True)
class _Layer:
    tar: Path
    diff_id: str
    size: int
    created_by: str
    info: Mapping[str, Any]


@dataclass(frozen=True)
class LayerPlan:
    """How to build one layer, and the hash of everything it is built from."""

    kind: str  # base, deps, product, pause
    key: str
    created_by: str
    build: Callable[[Path, Path, Progress], Mapping[str, Any]]  # (work dir, layer tar out, progress) -> info


def layer_dir(root: Path, plan: LayerPlan) -> Path:
    """Where `plan`'s layer lives in the images cache `root` (layer.tar and layer.json)."""
    return root / "layers" / f"{plan.kind}-{plan.key[:16]}"


def _load_layer(directory: Path) -> _Layer | None:
    try:
        meta = json.loads((directory / "layer.json").read_text())
    except (OSError, ValueError):
        return None
    tar = directory / "layer.tar"
    if not tar.is_file() or tar.stat().st_size != meta.get("size"):
        return None
    return _Layer(tar, meta["diff_id"], meta["size"], meta["created_by"], meta.get("info", {}))


def _ensure_layer(root: Path, plan: LayerPlan, progress: Progress) -> _Layer:
    """The layer from the cache, or built now (called with the lock held)."""
    target = layer_dir(root, plan)
    layer = _load_layer(target)
    if layer is not None:
        _touch(target)
        return layer
    started = time.monotonic()
    with _staging(root, plan.kind) as staging:
        entry = staging / "entry"
        entry.mkdir()
        work = staging / "work"
        work.mkdir()
        info = plan.build(work, entry / "layer.tar", progress)
        size = (entry / "layer.tar").stat().st_size
        meta = {
            "diff_id": f"sha256:{_sha256_file(entry / 'layer.tar')}",
            "size": size,
            "created_by": plan.created_by,
            "key": plan.key,
            "info": dict(info),
        }
        (entry / "layer.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        target.parent.mkdir(parents=True, exist_ok=True)
        _install(entry, target)
    _prune(target.parent, plan.kind)
    progress(f"image: {plan.kind} layer built in {time.monotonic() - started:.0f}s ({size / 1e6:.1f} MB)")
    layer = _load_layer(target)
    assert layer is not None
    return layer


# --- the base: Debian from this machine's apt lists -------------------------------------------------------


@dataclass(frozen=True)
class _AptLists:
    sources: str  # deb822 sources for the chroot, naming exactly the suites whose lists are copied
    files: tuple[Path, ...]  # the Packages and InRelease files to copy in
    release_files: tuple[Path, ...]
    epoch: int  # the newest Date of the suites' Release files


@cache
def _apt_lists() -> _AptLists:
    out = _run(
        [
            "apt-get",
            "indextargets",
            "--format",
            "$(FILENAME)\t$(SITE)\t$(RELEASE)\t$(COMPONENT)\t$(ARCHITECTURE)\t$(CREATED_BY)\t$(TARGET_OF)",
        ],
        what="apt-get indextargets",
    )
    suites: dict[tuple[str, str], list[Path]] = {}
    for line in out.splitlines():
        fields = line.split("\t")
        if len(fields) != 7:
            continue
        filename, site, suite, component, arch, created_by, target_of = fields
        if (target_of, created_by, component, arch) != (
            "deb",
            "Packages",
            DEBIAN_COMPONENT,
            DEBIAN_ARCHITECTURE,
        ):
            continue
        if suite not in DEBIAN_SUITES or not Path(filename).is_file():
            continue
        release = Path(filename.split(f"_dists_{suite}_", 1)[0] + f"_dists_{suite}_InRelease")
        if not release.is_file() or not re.search(r"^Origin: Debian$", release.read_text(), re.MULTILINE):
            continue  # a third-party repository that happens to name a suite bookworm
        suites.setdefault((site, suite), [release]).append(Path(filename))
    if not any(suite == DEBIAN_SUITE for _, suite in suites):
        raise BuildError(
            f"this machine has no apt lists for Debian {DEBIAN_SUITE} {DEBIAN_COMPONENT} "
            f"{DEBIAN_ARCHITECTURE} (the base is built from exactly the versions they name): "
            "run `apt-get update`"
        )
    stanzas = []
    files: list[Path] = []
    releases: list[Path] = []
    epoch = 0
    for (site, suite), paths in sorted(suites.items(), key=lambda item: DEBIAN_SUITES.index(item[0][1])):
        stanzas.append(
            f"Types: deb\nURIs: {site}\nSuites: {suite}\nComponents: {DEBIAN_COMPONENT}\n"
            f"Signed-By: {DEBIAN_KEYRING}\n"
        )
        files.extend(paths)
        releases.append(paths[0])
        date = re.search(r"^Date: (.+)$", paths[0].read_text(), re.MULTILINE)
        if date:
            epoch = max(epoch, int(email.utils.parsedate_to_datetime(date.group(1)).timestamp()))
    return _AptLists("\n".join(stanzas), tuple(files), tuple(releases), epoch or FIXED_MTIME)


def _base_plan() -> LayerPlan:
    lists = _apt_lists()
    key = _key(
        "base",
        _own_source(),
        _tool_version("mmdebstrap", "--version"),
        _tool_version("apt-get", "--version"),
        lists.sources,
        [_sha256_file(p) for p in lists.release_files],  # they name the hash of every Packages file
        DEBIAN_PACKAGES,
        DPKG_OPTIONS,
        MMDEBSTRAP_VARIANT,
    )
    created_by = (
        f"mmdebstrap --variant={MMDEBSTRAP_VARIANT} --include={','.join(DEBIAN_PACKAGES)} {DEBIAN_SUITE} "
        f"(apt lists of {_iso(lists.epoch)})"
    )
    return LayerPlan("base", key, created_by, _build_base)


def _installed_packages(rootfs: Path) -> dict[str, str]:
    packages: dict[str, str] = {}
    for stanza in (rootfs / "var/lib/dpkg/status").read_text().split("\n\n"):
        fields = dict(re.findall(r"^([\w-]+): (.*)$", stanza, re.MULTILINE))
        if fields.get("Status", "").endswith(" installed"):
            packages[fields["Package"]] = fields["Version"]
    return packages


def _build_base(work: Path, out: Path, progress: Progress) -> Mapping[str, Any]:
    if os.geteuid() != 0:
        raise BuildError(
            "building the image's Debian base needs root (mmdebstrap --mode=root): run it as root"
        )
    mmdebstrap = _tool("mmdebstrap")
    lists = _apt_lists()
    sources = work / "debian.sources"
    sources.write_text(lists.sources)
    rootfs = work / "rootfs"
    tmp = work / "tmp"
    tmp.mkdir()
    copy_lists = " ".join(shlex.quote(str(p)) for p in lists.files)
    cmd = [
        # A private mount namespace: whatever mmdebstrap mounts in the chroot goes away with it.
        _tool("unshare"),
        "--mount",
        "--propagation",
        "private",
        "--",
        mmdebstrap,
        "--mode=root",
        f"--variant={MMDEBSTRAP_VARIANT}",
        "--format=directory",
        f"--include={','.join(DEBIAN_PACKAGES)}",
        "--skip=update",  # the host's lists, copied in: the versions the key was computed from
        f'--setup-hook=mkdir -p "$1/var/lib/apt/lists" && cp {copy_lists} "$1/var/lib/apt/lists/"',
        *(f"--dpkgopt={option}" for option in DPKG_OPTIONS),
        # mmdebstrap copies the host's resolv.conf and hostname; the runtime provides both.
        '--customize-hook=rm -f "$1/etc/resolv.conf" "$1/etc/hostname"',
        DEBIAN_SUITE,
        str(rootfs),
        str(sources),
    ]
    env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "SOURCE_DATE_EPOCH": str(lists.epoch),
        "TMPDIR": str(tmp),
        "PYTHONHASHSEED": "0",  # py3compile runs in the chroot: sets in .pyc constants keep their order
        "LC_ALL": "C.UTF-8",
        "HOME": str(tmp),
    }
    progress(
        f"image: building the Debian {DEBIAN_SUITE} base ({', '.join(DEBIAN_PACKAGES)}) with mmdebstrap…"
    )
    _stream(
        cmd,
        what="mmdebstrap",
        env=env,
        progress=progress,
        show=lambda line: f"  base: {line[3:]}" if line.startswith("I: ") and "hook" not in line else None,
        hint=(
            "; if a package could not be downloaded, this machine's apt lists are older than the mirror: "
            "run `apt-get update`"
        ),
    )
    with (rootfs / "etc/passwd").open("a") as passwd:
        passwd.write(f"{USER_NAME}:x:{UID}:{GID}::{USER_HOME}:{USER_SHELL}\n")
    with (rootfs / "etc/group").open("a") as group:
        group.write(f"{USER_NAME}:x:{GID}:\n")
    packages = _installed_packages(rootfs)
    missing = [p for p in DEBIAN_PACKAGES if p not in packages]
    if missing:
        raise BuildError(f"mmdebstrap left out {', '.join(missing)}; see its output above")
    write_layer_tar(rootfs, out, mtime=lists.epoch, keep_owners=True, skip_contents_of=frozenset({"dev"}))
    return {"packages": packages, "epoch": lists.epoch}


# --- deps and product: Python code ------------------------------------------------------------------------


@cache
def _pyproject() -> dict[str, Any]:
    try:
        return tomllib.loads(PYPROJECT.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise BuildError(f"cannot read {PYPROJECT}: {exc}") from exc


def pinned_dependencies() -> tuple[str, ...]:
    """`[project].dependencies`; every one must be an exact pin."""
    deps = tuple(_pyproject()["project"]["dependencies"])
    loose = [d for d in deps if not re.fullmatch(r"[A-Za-z0-9._-]+==[\w.+!-]+", d)]
    if loose:
        raise BuildError(f"pyproject.toml: dependencies must be exact pins (name==version), not {loose}")
    return deps


def wheel_packages() -> tuple[str, ...]:
    """The wheel's package directories (pyproject's `packages`), e.g. `src/mcpreg`."""
    return tuple(_pyproject()["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"])


def wheel_top_level_names() -> tuple[str, ...]:
    """The importable names the wheel carries, and the only ones: `mcpreg`, `mcpreg_operator`, …"""
    return tuple(package.rsplit("/", 1)[-1] for package in wheel_packages())


def _product_sources() -> list[tuple[str, str]]:
    found = []
    for package in wheel_packages():
        for path in sorted((REPO_ROOT / package).rglob("*")):
            rel = path.relative_to(REPO_ROOT).as_posix()
            if not path.is_file() or "__pycache__" in path.parts or path.suffix in (".pyc", ".pyo"):
                continue
            found.append((rel, _sha256_file(path)))
    return found


def _pip() -> list[str]:
    return [sys.executable, "-m", "pip"]


def _pip_version() -> str:
    try:
        return importlib.metadata.version("pip")
    except importlib.metadata.PackageNotFoundError as exc:
        raise BuildError(f"{sys.executable} has no pip: run `make venv`") from exc


def _compile(layer_root: Path) -> None:
    python, _ = _python311()
    site = layer_root / SITE_PACKAGES.lstrip("/")
    _run(
        [
            python,
            "-s",
            "-m",
            "compileall",
            "-q",
            "-j",
            "0",
            "--invalidation-mode",
            "unchecked-hash",
            "-s",
            str(layer_root),
            "-p",
            "/",
            str(site),
        ],
        what="compiling .pyc files",
        env={"PATH": os.environ.get("PATH", ""), "PYTHONHASHSEED": "0", "LC_ALL": "C.UTF-8"},
    )


def _pip_env(work: Path) -> dict[str, str]:
    tmp = work / "tmp"
    tmp.mkdir(exist_ok=True)
    return dict(os.environ, TMPDIR=str(tmp), PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")


def _deps_plan() -> LayerPlan:
    pins = pinned_dependencies()
    key = _key(
        "deps", _own_source(), pins, PIP_TARGET_OPTIONS, SITE_PACKAGES, _pip_version(), _python311()[1]
    )
    return LayerPlan("deps", key, f"pip install --target {SITE_PACKAGES} {' '.join(pins)}", _build_deps)


def _build_deps(work: Path, out: Path, progress: Progress) -> Mapping[str, Any]:
    pins = pinned_dependencies()
    root = work / "root"
    site = root / SITE_PACKAGES.lstrip("/")
    report = work / "report.json"
    progress(f"image: installing the pinned Python dependencies ({len(pins)} pins) with pip…")
    _stream(
        [
            *_pip(),
            "install",
            "--no-compile",
            "--no-warn-script-location",
            "--target",
            str(site),
            *PIP_TARGET_OPTIONS,
            "--report",
            str(report),
            *pins,
        ],
        what="pip install of the dependencies",
        env=_pip_env(work),
        progress=progress,
        # The pins only; what they pull in is listed in the layer's layer.json ("resolved").
        show=lambda line: (
            f"  deps: {line}" if line.startswith("Collecting") and "(from" not in line else None
        ),
        hint="; is PyPI reachable?",
    )
    shutil.rmtree(site / "bin", ignore_errors=True)  # console scripts of the dependencies: not used
    resolved = {
        item["metadata"]["name"]: item["metadata"]["version"]
        for item in json.loads(report.read_text()).get("install", [])
    }
    _compile(root)
    write_layer_tar(root, out, mtime=FIXED_MTIME, keep_owners=False)
    return {"resolved": dict(sorted(resolved.items(), key=lambda kv: kv[0].lower()))}


def _product_plan() -> LayerPlan:
    key = _key(
        "product",
        _own_source(),
        hashlib.sha256(PYPROJECT.read_bytes()).hexdigest(),
        hashlib.sha256((REPO_ROOT / "README.md").read_bytes()).hexdigest(),  # the wheel's long description
        _product_sources(),
        _python311()[1],
        ENTRY_SCRIPT_TEXT,
    )
    version = _pyproject()["project"]["version"]
    return LayerPlan(
        "product", key, f"mcp-registry-operator {version} (wheel) and {ENTRY_SCRIPT}", _build_product
    )


def _build_product(work: Path, out: Path, progress: Progress) -> Mapping[str, Any]:
    wheels = work / "wheel"
    progress("image: building the project's wheel…")
    _run(
        [*_pip(), "wheel", "--no-deps", "--wheel-dir", str(wheels), str(REPO_ROOT)],
        what="pip wheel of the project",
        env=_pip_env(work),
    )
    found = sorted(wheels.glob("*.whl"))
    if len(found) != 1:
        raise BuildError(f"pip wheel wrote {len(found)} wheels into {wheels}, not one")
    wheel = found[0]
    root = work / "root"
    site = root / SITE_PACKAGES.lstrip("/")
    site.mkdir(parents=True)
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        allowed = wheel_top_level_names()
        stray = [n for n in names if n.split("/")[0] not in allowed and ".dist-info/" not in n]
        if stray:  # e.g. the development package, which must stay in the checkout
            raise BuildError(f"the wheel carries {stray[0]}, outside {', '.join(allowed)}")
        for required in ("mcpreg_cli/main.py", *(f"{name}/__init__.py" for name in allowed)):
            if required not in names:
                raise BuildError(f"the wheel lacks {required}: check pyproject's wheel packages")
        for name in names:  # a pure-Python wheel with no .data: installing it is unpacking it
            if name.startswith("/") or ".." in name.split("/") or ".data/" in name:
                raise BuildError(f"unexpected entry {name} in {wheel.name}")
        archive.extractall(site)  # noqa: S202 (every name was checked above)
    script = root / ENTRY_SCRIPT.lstrip("/")
    script.parent.mkdir(parents=True)
    script.write_text(ENTRY_SCRIPT_TEXT)
    script.chmod(0o755)
    _compile(root)
    write_layer_tar(root, out, mtime=FIXED_MTIME, keep_owners=False)
    return {"wheel": wheel.name}


# --- pause ------------------------------------------------------------------------------------------------


def _is_static_elf(path: Path) -> bool:
    data = path.read_bytes()
    if data[:5] != b"\x7fELF\x02":  # 64-bit ELF
        return False
    phoff = int.from_bytes(data[0x20:0x28], "little")
    phentsize = int.from_bytes(data[0x36:0x38], "little")
    phnum = int.from_bytes(data[0x38:0x3A], "little")
    pt_interp = 3
    return all(
        int.from_bytes(data[phoff + i * phentsize : phoff + i * phentsize + 4], "little") != pt_interp
        for i in range(phnum)
    )


def _pause_plan(progress: Progress) -> LayerPlan:
    binary = ensure_component(PAUSE, progress) / "pause"
    if not _is_static_elf(binary):
        raise BuildError(f"{binary} is not a static executable: delete it and rebuild with CGO_ENABLED=0")
    key = _key("pause", _own_source(), PAUSE.version, _sha256_file(binary))

    def build(work: Path, out: Path, progress: Progress) -> Mapping[str, Any]:
        root = work / "root"
        root.mkdir()
        shutil.copyfile(binary, root / PAUSE_PATH.lstrip("/"))
        (root / PAUSE_PATH.lstrip("/")).chmod(0o755)
        write_layer_tar(root, out, mtime=FIXED_MTIME, keep_owners=False)
        return {"version": PAUSE.version}

    return LayerPlan("pause", key, f"pause {PAUSE.version} (tools/pause, CGO_ENABLED=0 go build)", build)


# --- assembling images ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImagePlan:
    """An image: its layers, its config, and (`key`) the hash of all of them."""

    name: str  # cache entry prefix
    repository: str
    layers: tuple[LayerPlan, ...]
    config_args: tuple[str, ...]  # umoci config options
    created: Callable[[Sequence[_Layer]], str]

    @property
    def key(self) -> str:
        return _key(
            "image",
            self.repository,
            [layer.key for layer in self.layers],
            self.config_args,
            _tool_version("umoci", "--version"),
            _tool_version("skopeo", "--version"),
        )

    def directory(self, root: Path) -> Path:
        return root / f"{self.name}-{self.key[:12]}"


def _load_image(directory: Path) -> BuiltImage | None:
    try:
        meta = json.loads((directory / "image.json").read_text())
        image = BuiltImage(
            ref=meta["ref"],
            archive=directory / meta["archive"],
            digest=meta["digest"],
            compressed_size=meta["compressed_size"],
            build_seconds=0.0,
            uncompressed_size=meta["uncompressed_size"],
            layers=tuple(meta["layers"]),
            config_digest=meta["config_digest"],
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not image.archive.is_file() or image.archive.stat().st_size != meta.get("archive_size"):
        return None
    return image


def _blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()


def _assemble(root: Path, plan: ImagePlan, layers: Sequence[_Layer], progress: Progress) -> None:
    umoci = _tool("umoci")
    skopeo = _tool("skopeo")
    ref = f"{plan.repository}:{plan.key[:12]}"
    created = plan.created(layers)
    progress(f"image: assembling {ref} ({len(layers)} layers) with umoci and skopeo…")
    with _staging(root, plan.name) as staging:
        layout = staging / "layout"
        image = f"{layout}:image"
        _run([umoci, "init", "--layout", str(layout)], what="umoci init")
        _run([umoci, "new", "--image", image], what="umoci new")
        for layer in layers:
            _run(
                [
                    umoci,
                    "raw",
                    "add-layer",
                    "--image",
                    image,
                    "--history.created",
                    created,
                    "--history.created_by",
                    layer.created_by,
                    str(layer.tar),
                ],
                what="umoci raw add-layer",
            )
        _run(
            [umoci, "config", "--image", image, "--no-history", "--created", created, *plan.config_args],
            what="umoci config",
        )
        [manifest_desc] = json.loads((layout / "index.json").read_text())["manifests"]
        digest = manifest_desc["digest"]
        manifest = json.loads(_blob(layout, digest))
        entry = staging / "entry"
        entry.mkdir()
        archive = entry / "image.oci.tar"
        tmp = staging / "tmp"
        tmp.mkdir()
        # --insecure-policy: a local copy between two files; there is no signature to check.
        _run(
            [skopeo, "--insecure-policy", "copy", "--quiet", f"oci:{image}", f"oci-archive:{archive}:{ref}"],
            what="skopeo copy to an OCI archive",
            env=dict(os.environ, TMPDIR=str(tmp)),
        )
        with tarfile.open(archive) as tar:
            member = tar.extractfile("index.json")
            assert member is not None
            [archived] = json.loads(member.read())["manifests"]
        if (
            archived["digest"] != digest
            or archived.get("annotations", {}).get("org.opencontainers.image.ref.name") != ref
        ):
            raise BuildError(f"skopeo wrote {archive} with another manifest or name than {ref} {digest}")
        meta = {
            "ref": ref,
            "archive": archive.name,
            "archive_size": archive.stat().st_size,
            "digest": digest,
            "compressed_size": sum(d["size"] for d in manifest["layers"])
            + manifest["config"]["size"]
            + manifest_desc["size"],
            "uncompressed_size": sum(layer.size for layer in layers),
            "layers": [d["digest"] for d in manifest["layers"]],
            "config_digest": manifest["config"]["digest"],
            "key": plan.key,
            "layer_info": {p.kind: dict(layer.info) for p, layer in zip(plan.layers, layers, strict=True)},
        }
        (entry / "image.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        _install(entry, plan.directory(root))
    _prune(root, plan.name)


def _ensure_image(plan: ImagePlan, root: Path, progress: Progress, started: float) -> BuiltImage:
    """The image from the cache, or built now; `started`: when the caller began (planning may build,
    like the pause binary), for build_seconds."""
    directory = plan.directory(root)
    image = _load_image(directory)
    if image is not None:
        _touch(directory)
        return image
    with _lock(root):
        image = _load_image(directory)  # another process may have built it while we waited
        if image is not None:
            return image
        layers = [_ensure_layer(root, layer, progress) for layer in plan.layers]
        _assemble(root, plan, layers, progress)
    image = _load_image(directory)
    if image is None:
        raise BuildError(f"{directory} is incomplete right after it was built; is the disk full?")
    image = dataclasses.replace(image, build_seconds=time.monotonic() - started)
    progress(
        f"image: {image.ref} built in {image.build_seconds:.0f}s, "
        f"{image.compressed_size / 1e6:.1f} MB compressed"
    )
    return image


def _config_args(
    *,
    user: str,
    entrypoint: Sequence[str],
    cmd: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    ports: Sequence[str] = (),
    workdir: str = "",
    labels: Mapping[str, str] | None = None,
) -> tuple[str, ...]:
    args = ["--os", OS, "--architecture", ARCHITECTURE, "--config.user", user]
    for value in entrypoint:
        args += ["--config.entrypoint", value]
    for value in cmd:
        args += ["--config.cmd", value]
    for name, value in (env or {}).items():
        args += ["--config.env", f"{name}={value}"]
    for port in ports:
        args += ["--config.exposedports", port]
    if workdir:
        args += ["--config.workingdir", workdir]
    for name, value in (labels or {}).items():
        args += ["--config.label", f"{name}={value}"]
    return tuple(args)


def product_image_plan() -> ImagePlan:
    """The product image's layers and config, with their content keys; nothing is built."""
    return ImagePlan(
        name="mcp-registry-operator",
        repository=PRODUCT_REPOSITORY,
        layers=(_base_plan(), _deps_plan(), _product_plan()),
        config_args=_config_args(
            user=USER,
            entrypoint=ENTRYPOINT,
            cmd=CMD,
            env=ENV,
            ports=EXPOSED_PORTS,
            workdir=WORKING_DIR,
            labels=LABELS,
        ),
        # The image is as old as the Debian it is made of.
        created=lambda layers: _iso(int(layers[0].info.get("epoch", FIXED_MTIME))),
    )


def ensure_product_image(
    progress: Progress = stderr_progress, *, cache_root: Path | None = None
) -> BuiltImage:
    """The product's image (operator and registry API), from the cache or built now.

    `cache_root` (default `$MCPREG_CACHE_DIR/images`) holds the layers and images; a fresh one builds
    everything from scratch.
    """
    started = time.monotonic()
    for name in HOST_PACKAGES:
        _tool(name)
    return _ensure_image(product_image_plan(), cache_root or images_cache_dir(), progress, started)


def ensure_pause_image(progress: Progress = stderr_progress, *, cache_root: Path | None = None) -> BuiltImage:
    """The pod sandbox image `mcpreg.local/pause:<tag>`: one layer holding the static /pause."""
    started = time.monotonic()
    for name in ("umoci", "skopeo"):
        _tool(name)
    plan = ImagePlan(
        name="pause",
        repository=PAUSE_REPOSITORY,
        layers=(_pause_plan(progress),),
        config_args=_config_args(user=PAUSE_USER, entrypoint=(PAUSE_PATH,)),
        created=lambda _layers: _iso(FIXED_MTIME),
    )
    return _ensure_image(plan, cache_root or images_cache_dir(), progress, started)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m mcpreg_dev.image`: build (or find in the cache) an image and say where it is."""
    parser = argparse.ArgumentParser(
        prog="python -m mcpreg_dev.image", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--pause", action="store_true", help="the pod sandbox's pause image instead")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.add_argument(
        "--cache-dir", type=Path, help="the images cache to use (default $MCPREG_CACHE_DIR/images)"
    )
    args = parser.parse_args(argv)
    try:
        ensure = ensure_pause_image if args.pause else ensure_product_image
        image = ensure(stderr_progress, cache_root=args.cache_dir)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(image.to_json(), indent=2))
        return 0
    cached = " (from the cache)" if image.build_seconds == 0 else ""
    report = {
        "ref": image.ref,
        "digest": image.digest,
        "archive": image.archive,
        "compressed size": f"{image.compressed_size / 1e6:.1f} MB ({image.compressed_size} bytes)",
        "build time": f"{image.build_seconds:.1f}s{cached}",
        "import it with": f"ctr -n k8s.io images import {image.archive}",
    }
    for label, value in report.items():
        print(f"{label + ':':<18}{value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
