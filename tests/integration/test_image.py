"""The images are built without Docker, reproducibly, and they work: the pause image builds twice from
scratch to the same digest, and its /pause reaps orphans as PID 1 and stops on SIGTERM; rebuilding the
product layer gives the same product image digest; the product image runs `mcpreg` on a read-only root
filesystem as 65532 with nothing of the development code inside; containerd imports both archives under
their names."""

from __future__ import annotations

import json
import marshal
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from importlib.util import MAGIC_NUMBER
from pathlib import Path
from typing import Any

import pytest

from mcpreg_dev import image
from mcpreg_dev.binaries import PAUSE

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SAMPLE_CATALOG = REPO / "examples" / "sample-catalog"


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(*cmd: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd[:3])} failed ({result.returncode}): {result.stderr[-800:]}")
    return result


@pytest.fixture(scope="module", autouse=True)
def as_root() -> None:
    if os.geteuid() != 0:
        pytest.fail(
            "the image tests build with mmdebstrap --mode=root and run chroot/unshare: run them as root"
        )


def inspect_config(archive: Path) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(run("skopeo", "inspect", "--config", f"oci-archive:{archive}").stdout)
    return config


def archive_index(archive: Path) -> dict[str, Any]:
    with tarfile.open(archive) as tar:
        member = tar.extractfile("index.json")
        assert member is not None
        index: dict[str, Any] = json.loads(member.read())
    return index


def unpack(archive: Path, into: Path) -> tuple[Path, dict[str, Any]]:
    """The image's root filesystem and the OCI runtime config umoci derives from its config."""
    layout = into / "layout"
    run("skopeo", "--insecure-policy", "copy", "--quiet", f"oci-archive:{archive}", f"oci:{layout}:image")
    bundle = into / "bundle"
    run("umoci", "unpack", "--image", f"{layout}:image", str(bundle))
    return bundle / "rootfs", json.loads((bundle / "config.json").read_text())


# --- layer tars --------------------------------------------------------------------------------------------


def _tree(root: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        (root / "usr/local/bin").mkdir(parents=True)
        (root / "usr/local/bin/tool").write_text("#!/bin/sh\n")
        (root / "usr/local/bin/tool").chmod(0o777 & ~umask)
        (root / "usr/local/data.txt").write_text("x" * 300)
        os.link(root / "usr/local/data.txt", root / "usr/local/same.txt")
        (root / "usr/local/link").symlink_to("data.txt")
        (root / ("d" * 120)).mkdir()  # a long name: a pax header
    finally:
        os.umask(old)


def test_layer_tars_are_byte_identical_whatever_the_build_left(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    _tree(first, 0o022)
    time.sleep(1.1)
    _tree(second, 0o077)
    os.chown(second / "usr/local/data.txt", 1234, 1234)
    tars = []
    for tree in (first, second):
        out = tree.with_suffix(".tar")
        image.write_layer_tar(tree, out, mtime=image.FIXED_MTIME, keep_owners=False)
        tars.append(out)
    assert tars[0].read_bytes() == tars[1].read_bytes()
    with tarfile.open(tars[0]) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["usr/local/bin/tool"].mode == 0o755 and members["usr/local/data.txt"].mode == 0o644
    assert members["usr/local/same.txt"].islnk() and members["usr/local/link"].issym()
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members.values()} == {
        (0, 0, "", "", image.FIXED_MTIME)
    }

    # The base keeps owners and modes, and only clamps mtimes.
    kept = tmp_path / "kept.tar"
    image.write_layer_tar(second, kept, mtime=image.FIXED_MTIME + 10**9, keep_owners=True)
    with tarfile.open(kept) as tar:
        data = tar.getmember("usr/local/data.txt")
        tool = tar.getmember("usr/local/bin/tool")
    assert (data.uid, data.gid, tool.mode) == (1234, 1234, 0o700)
    assert data.mtime == int((second / "usr/local/data.txt").stat().st_mtime)


# --- pause ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pause_image() -> image.BuiltImage:
    return image.ensure_pause_image(_progress)


def test_pause_image_builds_twice_from_scratch_to_the_same_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pause_image: image.BuiltImage
) -> None:
    built = []
    for name in ("one", "two"):
        monkeypatch.setenv("MCPREG_CACHE_DIR", str(tmp_path / name))  # the Go binary too
        built.append(image.ensure_pause_image(_progress))
        assert (tmp_path / name / "bin" / f"pause-{PAUSE.version}" / "pause").is_file()
    one, two = built
    assert one.build_seconds > 0 and two.build_seconds > 0
    assert one.archive != two.archive and one.archive.read_bytes() != b""
    assert one.digest == two.digest == pause_image.digest
    assert one.ref == two.ref == pause_image.ref
    assert one.ref == f"{image.PAUSE_REPOSITORY}:{one.tag}" and len(one.tag) == 12

    again = image.ensure_pause_image(_progress)  # still MCPREG_CACHE_DIR=two: from its cache
    assert again.build_seconds == 0 and again.archive == two.archive and again.digest == two.digest


def test_pause_image_archive_and_config(pause_image: image.BuiltImage) -> None:
    inspected = json.loads(run("skopeo", "inspect", f"oci-archive:{pause_image.archive}").stdout)
    assert inspected["Digest"] == pause_image.digest
    assert inspected["Layers"] == list(pause_image.layers) and len(pause_image.layers) == 1
    [manifest] = archive_index(pause_image.archive)["manifests"]
    assert manifest["annotations"]["org.opencontainers.image.ref.name"] == pause_image.ref
    config = inspect_config(pause_image.archive)
    assert (config["os"], config["architecture"]) == ("linux", "amd64")
    assert config["config"]["User"] == "65535:65535"
    assert config["config"]["Entrypoint"] == ["/pause"]
    assert "Cmd" not in config["config"]
    assert config["created"] == "2020-02-02T00:00:00Z"
    assert 0 < pause_image.compressed_size < 2_000_000


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _pid1_of(unshare: subprocess.Popen[bytes]) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        children = _children(unshare.pid)
        if children:
            return children[0]
        time.sleep(0.02)
    raise AssertionError("unshare started no process")


def test_pause_reaps_orphans_as_pid_1_and_exits_0_on_sigterm_and_sigint(
    pause_image: image.BuiltImage, tmp_path: Path
) -> None:
    rootfs, _ = unpack(pause_image.archive, tmp_path)
    pause = rootfs / "pause"
    assert run(str(pause), "--version").stdout.strip() == f"pause {PAUSE.version}"

    for stop in (signal.SIGTERM, signal.SIGINT):
        # --kill-child: should the test fail half-way, pause dies with unshare instead of lingering.
        proc = subprocess.Popen(["unshare", "--pid", "--fork", "--kill-child", "--", str(pause)])
        try:
            pid1 = _pid1_of(proc)
            # An orphan in the pod's PID namespace: its parent (sh) exits at once, so the kernel
            # re-parents it to the namespace's PID 1, which must reap it when it exits.
            run(
                "nsenter",
                "--target",
                str(pid1),
                "--pid",
                "--",
                "sh",
                "-c",
                "sleep 1 </dev/null >/dev/null 2>&1 & exit 0",
            )
            time.sleep(0.3)
            [orphan] = _children(pid1)
            assert _state(orphan) == "S"
            time.sleep(1.5)
            assert _children(pid1) == [], "the exited orphan is still a child of pause: not reaped"
            assert proc.poll() is None, "pause exited on its own"
            os.kill(pid1, stop)
            assert proc.wait(timeout=5) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


# --- the product image --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def product_image() -> image.BuiltImage:
    return image.ensure_product_image(_progress)


@pytest.fixture(scope="module")
def unpacked(
    product_image: image.BuiltImage, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any]]:
    return unpack(product_image.archive, tmp_path_factory.mktemp("product"))


def test_a_cached_product_image_comes_back_at_once(product_image: image.BuiltImage) -> None:
    started = time.monotonic()
    again = image.ensure_product_image(_progress)
    assert time.monotonic() - started < 10
    assert again.build_seconds == 0
    assert (again.ref, again.digest, again.archive) == (
        product_image.ref,
        product_image.digest,
        product_image.archive,
    )


def test_rebuilding_the_product_layer_gives_the_same_digest(
    product_image: image.BuiltImage, tmp_path: Path
) -> None:
    """A fresh cache holding only the base and deps layers: the product layer and the image are built
    again from the same sources, and come out the same."""
    plan = image.product_image_plan()
    base, deps, product = plan.layers
    assert (base.kind, deps.kind, product.kind) == ("base", "deps", "product")
    (tmp_path / "layers").mkdir()
    for reused in (base, deps):
        image.layer_dir(tmp_path, reused).symlink_to(image.layer_dir(image.images_cache_dir(), reused))
    rebuilt = image.ensure_product_image(_progress, cache_root=tmp_path)
    assert rebuilt.build_seconds > 0
    fresh = image.layer_dir(tmp_path, product)
    assert fresh.is_dir() and not fresh.is_symlink()
    assert rebuilt.archive.parent.parent == tmp_path
    assert rebuilt.layers == product_image.layers
    assert (rebuilt.digest, rebuilt.ref) == (product_image.digest, product_image.ref)


def test_product_image_config(product_image: image.BuiltImage) -> None:
    inspected = json.loads(run("skopeo", "inspect", f"oci-archive:{product_image.archive}").stdout)
    assert inspected["Digest"] == product_image.digest
    assert inspected["Layers"] == list(product_image.layers) and len(product_image.layers) == 3
    [manifest] = archive_index(product_image.archive)["manifests"]
    assert manifest["annotations"]["org.opencontainers.image.ref.name"] == product_image.ref
    assert product_image.ref.startswith(f"{image.PRODUCT_REPOSITORY}:")

    config = inspect_config(product_image.archive)
    assert (config["os"], config["architecture"]) == ("linux", "amd64")
    settings = config["config"]
    assert settings["User"] == "65532:65532"
    assert settings["Entrypoint"] == ["mcpreg"]
    assert settings["Cmd"] == ["operator"]
    assert sorted(settings["ExposedPorts"]) == ["8080/tcp", "8081/tcp"]
    assert settings["WorkingDir"] == "/tmp"
    env = dict(e.split("=", 1) for e in settings["Env"])
    assert env == {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/tmp",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
    }
    assert settings["Labels"]["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert settings["Labels"] == image.LABELS
    assert all(h["created"] == config["created"] for h in config["history"])
    assert len(config["rootfs"]["diff_ids"]) == 3
    with tarfile.open(product_image.archive) as tar:
        sizes = {m.name.rsplit("/", 1)[-1]: m.size for m in tar.getmembers() if m.name.startswith("blobs/")}
    assert product_image.compressed_size == sum(sizes.values())  # layers, config and manifest: all blobs
    assert sizes[product_image.digest.split(":")[1]] == manifest["size"]
    assert product_image.uncompressed_size > product_image.compressed_size


NAMESPACES = ("unshare", "--mount", "--pid", "--fork", "--propagation", "private", "--")
RUN_IN_IMAGE = r"""
set -e
root=$1; user=$2; shift 2
mount --bind "$root" "$root"
mount -o remount,bind,ro "$root"
mount -t tmpfs -o size=64m,mode=1777 tmpfs "$root/tmp"
mount -t tmpfs -o size=1m tmpfs "$root/dev"
for node in null zero urandom random; do
    touch "$root/dev/$node"
    mount --bind "/dev/$node" "$root/dev/$node"
done
mount -t proc proc "$root/proc"
mount --bind -o ro "$CATALOGS" "$root/mnt"
exec chroot --userspec="$user" "$root" /usr/bin/env -i "$@"
"""


def in_image(
    unpacked: tuple[Path, dict[str, Any]], catalogs: Path, *cmd: str
) -> subprocess.CompletedProcess[str]:
    """`cmd` in the image's root filesystem, mounted read-only in a private mount and PID namespace, as
    the user and with the environment of the image's config, a tmpfs on /tmp and `catalogs` on /mnt."""
    rootfs, runtime = unpacked
    process = runtime["process"]
    user = f"{process['user']['uid']}:{process['user']['gid']}"
    return subprocess.run(
        [*NAMESPACES, "sh", "-c", RUN_IN_IMAGE, "sh", str(rootfs), user, *process["env"], *cmd],
        env={"PATH": os.environ["PATH"], "CATALOGS": str(catalogs)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def catalogs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("catalogs")
    (directory / "registry.json").write_bytes((SAMPLE_CATALOG / "registry.json").read_bytes())
    broken = json.loads((SAMPLE_CATALOG / "registry.json").read_text())
    first = next(iter(broken["servers"]))
    broken["servers"][first]["image"] = 42
    (directory / "broken.json").write_text(json.dumps(broken))
    directory.chmod(0o755)  # pytest makes it 0700; the image's user reads it on /mnt
    for path in directory.iterdir():
        path.chmod(0o644)
    return directory


def test_mcpreg_runs_read_only_as_nonroot(unpacked: tuple[Path, dict[str, Any]], catalogs: Path) -> None:
    _, runtime = unpacked
    assert runtime["process"]["args"] == ["mcpreg", "operator"]
    assert runtime["process"]["user"] == {"uid": 65532, "gid": 65532}

    version = in_image(unpacked, catalogs, "mcpreg", "--version")
    assert (version.returncode, version.stdout.strip()) == (0, "mcpreg 0.1.0"), version.stderr
    who = in_image(unpacked, catalogs, "sh", "-c", 'id -un; id -u; echo "$HOME"; touch /x 2>&1; touch /tmp/y')
    lines = who.stdout.splitlines()
    assert lines[:3] == ["nonroot", "65532", "/tmp"], who.stdout + who.stderr
    assert "Read-only file system" in lines[3]
    assert who.returncode == 0

    valid = in_image(unpacked, catalogs, "mcpreg", "validate", "/mnt/registry.json")
    assert valid.returncode == 0, valid.stdout + valid.stderr
    assert "/mnt/registry.json: valid" in valid.stdout
    broken = in_image(unpacked, catalogs, "mcpreg", "validate", "/mnt/broken.json")
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert ".image" in broken.stdout + broken.stderr

    imports = in_image(
        unpacked,
        catalogs,
        "python3",
        "-c",
        "import kopf, kubernetes_asyncio, aiohttp, pydantic, git, boto3, prometheus_client, yaml, "
        "cryptography, mcpreg_cli.main, mcpreg_operator.handlers, mcpreg_api.server; print('ok')",
    )
    assert imports.stdout.strip() == "ok", imports.stderr
    git = in_image(unpacked, catalogs, "git", "--version")
    assert git.returncode == 0 and git.stdout.startswith("git version 2."), git.stderr


def test_the_development_code_is_not_inside(unpacked: tuple[Path, dict[str, Any]], catalogs: Path) -> None:
    rootfs, _ = unpacked
    site = rootfs / image.SITE_PACKAGES.lstrip("/")
    assert (site / "mcpreg_cli" / "main.py").is_file()  # the walk below looks in the right place
    for path in ("mcpreg_dev", "tests", "fixtures"):
        assert not (site / path).exists(), f"{path} is in the image"
    assert sorted(p.name for p in site.glob("mcpreg*")) == sorted(image.wheel_top_level_names())
    assert not list(rootfs.glob("usr/lib/python3*/dist-packages/pip")), "pip is in the image"
    assert not (rootfs / "usr/bin/apt-get").exists()
    assert list((rootfs / "dev").iterdir()) == []

    devenv = in_image(unpacked, catalogs, "python3", "-c", "import mcpreg_dev")
    assert devenv.returncode == 1 and "ModuleNotFoundError: No module named 'mcpreg_dev'" in devenv.stderr
    dev = in_image(unpacked, catalogs, "mcpreg", "dev", "up")
    assert dev.returncode == 2 and "invalid choice: 'dev'" in dev.stderr


def test_pyc_files_are_precompiled_unchecked_with_image_paths(unpacked: tuple[Path, dict[str, Any]]) -> None:
    rootfs, _ = unpacked
    site = rootfs / image.SITE_PACKAGES.lstrip("/")
    for module in ("mcpreg_cli/main", "mcpreg_api/server", "kopf/__init__", "yaml/__init__"):
        source = site / f"{module}.py"
        pyc = source.parent / "__pycache__" / f"{source.stem}.cpython-311.pyc"
        data = pyc.read_bytes()
        assert data[:4] == MAGIC_NUMBER
        assert int.from_bytes(data[4:8], "little") == 0b01, f"{pyc.name}: not an unchecked-hash .pyc"
        code = marshal.loads(data[16:])  # noqa: S302 (the image's own .pyc, just built)
        assert code.co_filename == f"{image.SITE_PACKAGES}/{module}.py"
    script = rootfs / image.ENTRY_SCRIPT.lstrip("/")
    assert script.read_text() == image.ENTRY_SCRIPT_TEXT and os.access(script, os.X_OK)
    passwd = (rootfs / "etc/passwd").read_text().splitlines()
    assert "nonroot:x:65532:65532::/tmp:/usr/sbin/nologin" in passwd
    # No docs (only the licences), man pages or translations: dpkg's path-exclude kept them out.
    docs = [p for p in (rootfs / "usr/share/doc").rglob("*") if p.is_file() and not p.is_symlink()]
    assert docs and {p.name for p in docs} == {"copyright"}
    for excluded in ("usr/share/man", "usr/share/locale"):
        assert not [p for p in (rootfs / excluded).rglob("*") if p.is_file() and p.name != "locale.alias"]


# --- containerd ---------------------------------------------------------------------------------------------


@pytest.fixture
def containerd() -> Iterator[Path]:
    """A private containerd (its own root, state and socket, no CRI) for the duration of one test."""
    work = Path(tempfile.mkdtemp(prefix="mcpreg-ctrd-", dir="/tmp"))  # a socket path must be short
    socket = work / "c.sock"
    (work / "config.toml").write_text(
        f'version = 2\nroot = "{work}/root"\nstate = "{work}/state"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{socket}"\n[ttrpc]\n  address = "{socket}.ttrpc"\n'
    )
    with (work / "log").open("w") as log:
        proc = subprocess.Popen(
            ["containerd", "--config", str(work / "config.toml")], stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 20
        while not socket.exists():
            assert proc.poll() is None, (work / "log").read_text()[-800:]
            assert time.monotonic() < deadline, "containerd did not start"
            time.sleep(0.05)
        yield socket
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        subprocess.run(["rm", "-rf", "--one-file-system", str(work)], check=False)


def test_containerd_imports_both_archives_under_their_names(
    containerd: Path, product_image: image.BuiltImage, pause_image: image.BuiltImage
) -> None:
    ctr = ["ctr", "--address", str(containerd), "--namespace", "k8s.io"]
    for built in (pause_image, product_image):
        # Unpacking (native snapshotter: no mounts) applies every layer and checks its diff ID.
        run(*ctr, "images", "import", "--snapshotter", "native", str(built.archive), timeout=300)
    listed = {}
    for line in run(*ctr, "images", "list").stdout.splitlines()[1:]:
        ref, _type, digest, *_ = line.split()
        listed[ref] = digest
    assert listed == {pause_image.ref: pause_image.digest, product_image.ref: product_image.digest}
