"""The packages form layers without circles, read from the import statements of every module.

mcpreg (catalogue model, storage, Kubernetes access) is at the bottom; the operator and the API server
stand on it and not on each other; the command line stands on both; the development package (local
control plane, real node, image builder, test servers, generators) may use all of them, and nothing
of the product uses it or a test-only library.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = {
    "mcpreg": REPO / "src" / "mcpreg",
    "mcpreg_operator": REPO / "operator" / "mcpreg_operator",
    "mcpreg_api": REPO / "api-server" / "mcpreg_api",
    "mcpreg_cli": REPO / "cli" / "mcpreg_cli",
    "mcpreg_dev": REPO / "dev" / "mcpreg_dev",
}
# What each package may import of the others.
ALLOWED = {
    "mcpreg": set(),
    "mcpreg_operator": {"mcpreg"},
    "mcpreg_api": {"mcpreg"},
    "mcpreg_cli": {"mcpreg", "mcpreg_operator", "mcpreg_api"},
    "mcpreg_dev": {"mcpreg", "mcpreg_operator", "mcpreg_api", "mcpreg_cli"},
}
# Installed for the tests only (pyproject's `test` extra): the product must not need them.
TEST_ONLY = {"pytest", "hypothesis", "jsonschema", "schemathesis", "kubernetes", "mypy", "ruff"}
PRODUCT = ("mcpreg", "mcpreg_operator", "mcpreg_api", "mcpreg_cli")


def imported_top_names(path: Path) -> set[str]:
    """The top-level names of every absolute import in one module, at any depth (lazy imports too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def imports_of(package: str) -> dict[str, set[str]]:
    return {
        str(path.relative_to(REPO)): imported_top_names(path)
        for path in sorted(PACKAGES[package].rglob("*.py"))
    }


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_a_package_imports_only_the_layers_below_it(package: str) -> None:
    others = set(PACKAGES) - {package}
    crossings = {
        module: sorted((names & others) - ALLOWED[package])
        for module, names in imports_of(package).items()
        if (names & others) - ALLOWED[package]
    }
    assert crossings == {}


@pytest.mark.parametrize("package", PRODUCT)
def test_the_product_needs_no_test_only_library(package: str) -> None:
    used = {module: sorted(names & TEST_ONLY) for module, names in imports_of(package).items()}
    assert {module: names for module, names in used.items() if names} == {}


def test_the_reader_sees_the_imports_it_judges() -> None:
    # The checks above are only as good as this walk: it must see lazy imports inside functions.
    handlers = imported_top_names(PACKAGES["mcpreg_cli"] / "operator.py")
    assert "mcpreg_operator" in handlers
    assert "mcpreg_dev" in imported_top_names(REPO / "tests" / "fixtures" / "kube.py")
