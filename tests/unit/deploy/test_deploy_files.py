"""The files that ship the operator, checked without a cluster: the chart's CRD copy and the generated
configuration reference are current, and the Dockerfile keeps its rules (multi-stage, pinned bases,
non-root, no build tools in the final stage) in step with the chart and the API Deployment."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml
from dockerfile_testdata import Stage, parse_dockerfile

from mcpreg_dev import crddocs
from mcpreg_operator import workload
from mcpreg_operator.spec.registry import MCPRegistrySpec

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "mcp-registry-operator"
DOCKERFILE = REPO / "Dockerfile"
NON_ROOT_UID = 65532


# --- derived files --------------------------------------------------------------------------------


def test_chart_crd_is_an_exact_copy_of_crds_dir() -> None:
    """`helm install` ships charts/…/crds/; it must be the CRD the operator is built for, byte for byte."""
    copies = sorted(p.name for p in (CHART / "crds").iterdir())
    assert copies == sorted(p.name for p in (REPO / "crds").glob("*.yaml"))
    for name in copies:
        assert (CHART / "crds" / name).read_bytes() == (REPO / "crds" / name).read_bytes(), (
            f"charts/mcp-registry-operator/crds/{name} differs from crds/{name}: run `make generate`"
        )


def test_configuration_reference_is_current() -> None:
    assert crddocs.stale_files() == [], "docs/configuration.md or the chart CRD is stale: run `make generate`"
    assert crddocs.main(["--check"]) == 0


def test_configuration_reference_names_every_field() -> None:
    crd = crddocs.load_crd()
    [version] = crd["spec"]["versions"]
    root = version["schema"]["openAPIV3Schema"]["properties"]
    text = crddocs.DOCS_FILE.read_text()
    paths = [p for top in ("spec", "status") for p in crddocs.field_paths(top, root[top])]
    assert len(paths) > 60
    for path in paths:
        parent, name = path.rsplit(".", 1)
        section = text.split(f"### `{parent}`\n", 1)
        assert len(section) == 2, f"no section for {parent}"
        table = section[1].split("\n### ", 1)[0]
        assert re.search(rf"^\| `{re.escape(name)}`", table, re.MULTILINE), f"{path} is not documented"


def test_reference_links_resolve_to_sections() -> None:
    text = crddocs.DOCS_FILE.read_text()
    anchors = {crddocs.anchor(h) for h in re.findall(r"^### `([^`]+)`$", text, re.MULTILINE)}
    links = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert links and links <= anchors


def test_reference_renders_constraints_and_rules() -> None:
    text = crddocs.DOCS_FILE.read_text()
    assert "One of `git`, `configmap`, `url`, `api`." in text
    assert "Default: `registry.json`." in text
    assert "Rule: interval must be at least 30s and at most 8760h." in text
    assert "- at most one of branch, tag and commit may be set" in text
    # Markdown would swallow `<name>` as an HTML tag.
    assert "&lt;prefix&gt;/&lt;namespace&gt;/&lt;name&gt;" in text


def test_check_reports_a_stale_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale_docs = tmp_path / "configuration.md"
    stale_docs.write_text("# old\n")
    monkeypatch.setattr(crddocs, "DOCS_FILE", stale_docs)
    assert crddocs.stale_files() == [stale_docs]
    monkeypatch.setattr(crddocs, "CHART_CRD_FILE", tmp_path / "missing.yaml")
    assert crddocs.stale_files() == [stale_docs, tmp_path / "missing.yaml"]


# --- Dockerfile -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dockerfile() -> tuple[dict[str, str], list[Stage]]:
    return parse_dockerfile(DOCKERFILE.read_text())


def test_dockerfile_is_multi_stage_on_a_pinned_base(dockerfile: tuple[dict[str, str], list[Stage]]) -> None:
    _, stages = dockerfile
    assert len(stages) >= 2
    names = [s.name for s in stages]
    for stage in stages:
        image, _, digest = stage.base.partition("@")
        if stage.base in names:
            continue  # FROM an earlier stage
        repo, _, tag = image.rpartition(":")
        assert repo and tag, f"{stage.base}: base images must name a tag (or a digest)"
        assert tag != "latest", f"{stage.base}: never `latest`"
        assert re.fullmatch(r"\d+(\.\d+)+[-\w.]*", tag), f"{stage.base}: pin a full version tag"
        assert not digest or re.fullmatch(r"sha256:[0-9a-f]{64}", digest)
    # The final stage copies the built environment from the build stage instead of building it.
    final = stages[-1]
    assert any(args.startswith(f"--from={stages[0].name} ") for args in final.of("COPY"))


def test_final_stage_runs_as_non_root_without_build_tools(
    dockerfile: tuple[dict[str, str], list[Stage]],
) -> None:
    _, stages = dockerfile
    final = stages[-1]
    users = final.of("USER")
    assert users, "the final stage must set USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "USER must be a numeric non-root UID (runAsNonRoot checks it)"
    assert int(uid) == NON_ROOT_UID
    run = " ".join(final.of("RUN"))
    for tool in ("gcc", "g++", "make", "build-essential", "python3-dev", "cargo", "rustc"):
        assert not re.search(rf"(^|\s){re.escape(tool)}(\s|$)", run), f"build tool {tool} in the final stage"
    assert not re.search(r"pip[3]? install", run), "no pip install in the final stage"
    # Debian's python3 comes without pip; the final stage must not bring it in.
    assert "python3-pip" not in run, "no pip in the final stage"
    if "apt-get install" in run:
        assert "--no-install-recommends" in run and "rm -rf /var/lib/apt/lists/*" in run
    assert final.of("ENTRYPOINT") == ['["mcpreg"]']
    assert all(cmd.startswith("[") for cmd in final.of("CMD")), "exec form only"
    # The installer stays in the build stage: only the installed packages are copied.
    assert not any("pip" in args for args in final.of("COPY"))


def test_dockerignore_lets_in_exactly_what_the_build_copies(
    dockerfile: tuple[dict[str, str], list[Stage]],
) -> None:
    _, stages = dockerfile
    rules = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules[0] == "*", "an allow-list: everything else (.venv, .git, caches, tests) stays out"
    allowed = {r[1:].rstrip("/") for r in rules if r.startswith("!")}
    copied: set[str] = set()
    for stage in stages:
        for args in stage.of("COPY"):
            if args.startswith("--from="):
                continue
            *sources, _dest = shlex.split(args)
            copied.update(s.rstrip("/") for s in sources)
    assert copied == allowed
    for path in copied:
        assert (REPO / path).exists(), f"COPY {path}: no such file"


def test_image_user_matches_the_pods_that_run_it() -> None:
    """The chart's pod security context and the API Deployment's both run as the image's user."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["podSecurityContext"]["runAsUser"] == NON_ROOT_UID
    assert values["securityContext"]["readOnlyRootFilesystem"] is True
    manifests = workload.build_manifests(
        owner=workload.Owner(name="r", uid="u"),
        namespace="ns",
        spec=MCPRegistrySpec.model_validate({"source": {"type": "configmap", "configMap": {"name": "c"}}}),
        data_configmaps=["r-data"],
    )
    [deployment] = [m for m in manifests if m["kind"] == "Deployment"]
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == NON_ROOT_UID


def test_chart_default_image_is_the_operators_fallback_api_image() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    image = f"{values['image']['repository']}:{values['image']['tag'] or chart['appVersion']}"
    assert image == workload.FALLBACK_API_IMAGE


def test_chart_versions_follow_the_project() -> None:
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == project["version"]
    assert chart["apiVersion"] == "v2"
    json.loads((CHART / "values.schema.json").read_text())


# --- kind -------------------------------------------------------------------------------------------


def test_kind_config_and_its_documented_path() -> None:
    kind = yaml.safe_load((REPO / "kind-config.yaml").read_text())
    assert (kind["kind"], kind["apiVersion"]) == ("Cluster", "kind.x-k8s.io/v1alpha4")
    assert [n["role"] for n in kind["nodes"]].count("control-plane") == 1
    guide = (REPO / "docs" / "kind.md").read_text()
    assert f"--name {kind['name']}" in guide
    # Every repository file the guide names exists, and the image it builds is the chart's default.
    for path in re.findall(r"(?:examples|charts)/[\w./-]+", guide):
        assert (REPO / path).exists(), path
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    image = f"{values['image']['repository']}:{chart['appVersion']}"
    assert guide.count(image) == 2  # docker build -t, kind load
    assert values["image"]["pullPolicy"] == "IfNotPresent"  # so the loaded image is used
    # The registry the guide applies is the one it port-forwards to.
    registry = next(
        d
        for d in yaml.safe_load_all((REPO / "examples" / "registry-configmap.yaml").read_text())
        if d["kind"] == "MCPRegistry"
    )
    assert f"svc/{registry['metadata']['name']}-api" in guide


# --- README ---------------------------------------------------------------------------------------


def _value_keys(values: dict[str, object], prefix: str = "", depth: int = 4) -> list[str]:
    keys = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and depth > 1 and key not in ("resources", "livenessProbe"):
            if key.endswith("ecurityContext"):
                keys.append(path)
                continue
            keys += _value_keys(value, f"{path}.", depth - 1)
        else:
            keys.append(path)
    return keys


def test_readme_documents_every_chart_value() -> None:
    readme = (REPO / "README.md").read_text()
    table = readme.split("## Installing in a cluster (Helm)", 1)[1].split("\n## ", 1)[0]
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for key in _value_keys(values):
        last = key.rsplit(".", 1)[-1]
        assert f"`{key}`" in table or f"`.{last}`" in table or f"`{last}`" in table, f"{key} undocumented"


def test_readme_troubleshoots_every_reason_the_operator_reports() -> None:
    """Each condition reason raised by the sources, the sync pipeline and the storage backends."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Troubleshooting", 1)[1].split("\n## ", 1)[0]
    operator_dir = REPO / "operator" / "mcpreg_operator"
    code = "\n".join(p.read_text() for p in operator_dir.rglob("*.py"))
    errors = (operator_dir / "sources" / "errors.py").read_text()
    kinds = dict(re.findall(r"^\s+([A-Z_]+) = \"(\w+)\"", errors, re.MULTILINE))
    raised = set(re.findall(r"SourceErrorKind\.([A-Z_]+)", code.replace(errors, "")))
    reasons = {kinds[k] for k in raised}
    reasons |= {"InvalidData", "StorageFailed", "InternalError", "InvalidSpec", "WorkloadError"}
    # Per-entry quarantine (spec.validation): the DataValid reasons of operator/mcpreg_operator/quarantine.py.
    quarantine = (operator_dir / "quarantine.py").read_text()
    reasons |= set(re.findall(r'^[A-Z_]+ = "([A-Z]\w+)"', quarantine, re.MULTILINE)) - {"Valid"}
    # Storage errors name themselves (sync.failure_from_error): StorageConflictError -> StorageConflict.
    storage_errors = (REPO / "src" / "mcpreg" / "storage" / "errors.py").read_text()
    reasons |= set(re.findall(r"^class (Storage\w+)Error\(StorageError\)", storage_errors, re.MULTILINE))
    # Kubernetes API errors become Kubernetes<Status reason>; the ones a sync meets in practice.
    reasons |= {f"Kubernetes{r}" for r in ("Forbidden", "TooManyRequests", "InternalError", "Unavailable")}
    s3_errors = REPO / "src" / "mcpreg" / "storage" / "s3_errors.py"
    if s3_errors.exists():
        internal = {"Conflict", "NotFound", "NotModified"}
        reasons |= set(re.findall(r'reason = "(\w+)"', s3_errors.read_text())) - internal
    assert {"SourceUnreachable", "AuthenticationFailed", "SourceNotFound", "SourceTooLarge"} <= reasons
    for reason in sorted(reasons):
        assert f"`{reason}`" in section, f"README troubleshooting does not cover {reason}"
