"""Packaging: `pip install -e ".[test]"` installs everything the default suite imports, so that `pytest` passes."""

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="Python 3.11 reads pyproject.toml")

ROOT = Path(__file__).parent.parent


def canonical(requirement: str) -> str:
    """The distribution a requirement names, normalised as pip does: "Scikit_Learn>=1.3" -> "scikit-learn"."""
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9_.-]+", requirement).group()).lower()


def imported_modules() -> set[str]:
    """Top-level names of every absolute import in tests/, those inside test functions included."""
    names = set()
    for path in (ROOT / "tests").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def test_every_package_the_suite_imports_is_a_dependency_or_in_the_test_extra():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [*project["dependencies"], *project["optional-dependencies"]["test"]]
    declared = {canonical(r) for r in requirements}
    ours = {"hf_ssdd", "conftest", *(p.stem for p in (ROOT / "tests").rglob("*.py")),
            *(p.stem for p in (ROOT / "benchmarks").glob("*.py")), *(p.stem for p in (ROOT / "recipes").glob("*.py"))}
    distributions = packages_distributions()
    missing = {module: sorted(distributions.get(module, ["?"]))
               for module in imported_modules() - set(sys.stdlib_module_names) - ours
               if not {canonical(d) for d in distributions.get(module, [])} & declared}
    assert not missing, f"imported by tests/ but not installed by the `test` extra: {missing}"
