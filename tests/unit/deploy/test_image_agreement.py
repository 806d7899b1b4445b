"""The Dockerfile and `make image` (mcpreg_dev.image) build the same image: the same Debian release and
packages, the same Python and site-packages, the same user, entrypoint, command, ports, working directory,
environment and labels. Each is read from the Dockerfile and compared with the constants image.py builds
from, so neither can drift from the other without this failing (the mutation tests prove it would)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from dockerfile_testdata import parse_dockerfile

from mcpreg_dev import image

DOCKERFILE = Path(__file__).resolve().parents[3] / "Dockerfile"
DEBIAN_CODENAMES = {"12": "bookworm", "13": "trixie"}
DEBIAN_PYTHON = {"12": "3.11", "13": "3.13"}


def _package_roots() -> list[str]:
    """The checkout's top directories of the wheel's packages (`src`, `operator`, …)."""
    return [package.split("/")[0] for package in image.wheel_packages()]


def key_values(args: str) -> dict[str, str]:
    return dict(word.split("=", 1) for word in shlex.split(args))


class Missing(Exception):
    """The Dockerfile lacks (or repeats) a command the comparison needs."""


def find(commands: list[list[str]], *prefix: str) -> list[str]:
    matches = [c for c in commands if c[: len(prefix)] == list(prefix)]
    if len(matches) != 1:
        raise Missing(f"expected one `{' '.join(prefix)}` command, found {len(matches)}")
    return matches[0]


def options(words: list[str]) -> dict[str, str]:
    """`--name value` pairs of a command line (flags without a value map to "")."""
    found: dict[str, str] = {}
    for i, word in enumerate(words):
        if word.startswith("--"):
            name, eq, value = word.partition("=")
            nxt = words[i + 1] if i + 1 < len(words) else ""
            found[name] = value if eq else ("" if nxt.startswith("-") or not nxt else nxt)
    return found


def disagreements(text: str) -> list[str]:
    """Every way the Dockerfile differs from what mcpreg_dev.image builds; [] when they agree."""
    problems: list[str] = []
    try:
        _compare(text, problems)
    except Missing as exc:
        problems.append(f"structure: {exc}")
    return problems


def _compare(text: str, problems: list[str]) -> None:

    def check(what: str, dockerfile: object, built: object) -> None:
        if dockerfile != built:
            problems.append(f"{what}: Dockerfile has {dockerfile!r}, image.py {built!r}")

    stages = parse_dockerfile(text)[1]
    build, final = stages[0], stages[-1]

    # Debian release and packages
    for stage in stages:
        match = re.fullmatch(r"debian:(\d+)(?:\.\d+)?-slim(?:@sha256:[0-9a-f]{64})?", stage.base)
        release = match.group(1) if match else stage.base
        check(f"base of stage {stage.name}", DEBIAN_CODENAMES.get(release, release), image.DEBIAN_SUITE)
    install = find(final.shell(), "apt-get", "install")
    check(
        "Debian packages",
        sorted(w for w in install[2:] if not w.startswith("-")),
        sorted(image.DEBIAN_PACKAGES),
    )

    # Python: Debian's python3, the same site-packages, the same pip options, the same entry script
    match = re.fullmatch(r"debian:(\d+).*", build.base)
    check(
        "Python of the Debian release",
        DEBIAN_PYTHON.get(match.group(1) if match else ""),
        image.PYTHON_VERSION,
    )
    # the wheel's sources: pyproject.toml, README.md and each product package, nothing of the checkout else
    check(
        "sources copied into the build stage",
        sorted(build.of("COPY")),
        sorted(["pyproject.toml README.md ./", *(f"{top}/ {top}/" for top in _package_roots())]),
    )
    commands = build.shell()
    pip = find(commands, "python3", "-m", "pip", "install")
    check("pip --target", options(pip).get("--target", "").removeprefix("/staging"), image.SITE_PACKAGES)
    expected = " ".join(image.PIP_TARGET_OPTIONS)
    check("pip platform options", expected in " ".join(pip), True)
    check("pip --no-compile", "--no-compile" in pip, True)
    find(commands, "rm", "-rf", f"/staging{image.SITE_PACKAGES}/bin")  # console scripts: not shipped
    printf = find(commands, "printf")
    check("entry script text", printf[1].replace("\\n", "\n"), image.ENTRY_SCRIPT_TEXT)
    check("entry script path", printf[2:], [">", f"/staging{image.ENTRY_SCRIPT}"])
    compileall = find(commands, "python3", "-m", "compileall")
    check("pyc invalidation mode", options(compileall).get("--invalidation-mode"), "unchecked-hash")
    check("pyc directory", compileall[-1], f"/staging{image.SITE_PACKAGES}")
    check("staged code copied", final.of("COPY"), ["--from=build /staging/ /"])

    # The user
    runtime = final.shell()
    groupadd = find(runtime, "groupadd")
    check("group", (groupadd[-1], options(groupadd).get("--gid")), (image.USER_NAME, str(image.GID)))
    useradd = find(runtime, "useradd")
    opts = options(useradd)
    check(
        "user",
        (useradd[-1], opts.get("--uid"), opts.get("--gid"), opts.get("--home-dir"), opts.get("--shell")),
        (image.USER_NAME, str(image.UID), str(image.GID), image.USER_HOME, image.USER_SHELL),
    )

    # The config
    check("USER", final.of("USER")[-1:], [image.USER])
    check("ENTRYPOINT", [json.loads(a) for a in final.of("ENTRYPOINT")], [list(image.ENTRYPOINT)])
    check("CMD", [json.loads(a) for a in final.of("CMD")], [list(image.CMD)])
    ports = sorted(p if "/" in p else f"{p}/tcp" for a in final.of("EXPOSE") for p in a.split())
    check("EXPOSE", ports, sorted(image.EXPOSED_PORTS))
    check("WORKDIR", final.of("WORKDIR")[-1:], [image.WORKING_DIR])
    env: dict[str, str] = {}
    for args in final.of("ENV"):
        env.update(key_values(args))
    check("ENV", env, image.ENV)
    labels: dict[str, str] = {}
    for args in final.of("LABEL"):
        labels.update(key_values(args))
    check("LABEL", labels, image.LABELS)


def test_dockerfile_builds_what_make_image_builds() -> None:
    assert disagreements(DOCKERFILE.read_text()) == []


def test_image_py_targets_debian_12_and_its_python() -> None:
    assert DEBIAN_CODENAMES[image.DEBIAN_RELEASE] == image.DEBIAN_SUITE
    assert DEBIAN_PYTHON[image.DEBIAN_RELEASE] == image.PYTHON_VERSION
    assert f"/usr/local/lib/python{image.PYTHON_VERSION}/dist-packages" == image.SITE_PACKAGES
    assert image.ENV["PATH"].split(":")[:2] == ["/usr/local/sbin", "/usr/local/bin"]  # the entry script
    assert image.ENTRY_SCRIPT.startswith("/usr/local/bin/") and image.ENTRYPOINT == ("mcpreg",)


MUTATIONS = [
    ("USER 65532:65532", "USER 1000:1000", "USER"),
    ('ENTRYPOINT ["mcpreg"]', 'ENTRYPOINT ["/usr/local/bin/mcpreg", "x"]', "ENTRYPOINT"),
    ('CMD ["operator"]', 'CMD ["serve"]', "CMD"),
    ("EXPOSE 8080 8081", "EXPOSE 8080", "EXPOSE"),
    ("WORKDIR /tmp", "WORKDIR /", "WORKDIR"),
    ("PYTHONUNBUFFERED=1", "PYTHONUNBUFFERED=0", "ENV"),
    ("HOME=/tmp", "HOME=/home/nonroot", "ENV"),
    ('licenses="Apache-2.0"', 'licenses="MIT"', "LABEL"),
    ("python3 git ca-certificates", "python3 git ca-certificates curl", "Debian packages"),
    ("debian:12.15-slim", "debian:13.1-slim", "base of stage"),
    ("--platform manylinux2014_x86_64", "--platform manylinux_2_28_x86_64", "pip platform options"),
    ("--invalidation-mode unchecked-hash", "--invalidation-mode checked-hash", "pyc invalidation mode"),
    ("--home-dir /tmp", "--home-dir /home/nonroot", "user"),
    ("from mcpreg_cli.main import main", "from mcpreg.main import main", "entry script text"),
    ("/dist-packages/bin", "/dist-packages/bin/x", "structure"),
    (
        "COPY --from=build /staging/ /",
        "COPY --from=build /staging/usr/local/lib /usr/local/lib",
        "staged code",
    ),
    ("--gid 65532 nonroot", "--gid 1000 nonroot", "group"),
]


@pytest.mark.parametrize(("old", "new", "reported"), MUTATIONS, ids=[m[2] + ":" + m[1] for m in MUTATIONS])
def test_a_drifted_dockerfile_is_caught(old: str, new: str, reported: str) -> None:
    text = DOCKERFILE.read_text()
    assert old in text, f"the mutation no longer applies: {old!r} is not in the Dockerfile"
    problems = disagreements(text.replace(old, new))
    assert any(p.startswith(reported) for p in problems), problems
