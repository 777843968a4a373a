"""The package's layering: a module imports only modules of its own layer or below, and no import goes in a circle.

A new module joins a layer here; a test fails until it does.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "hf_ssdd"
LAYERS = [  # bottom first
    "provenance atomic resnet methods.krr_st methods.mkdt methods.krr_st.krr",  # no project imports
    "config teacher_config pretrain_config transfer_config trajectories_config methods methods.config "
    "methods.krr_st.config methods.mkdt.config",  # typed configs, the method registry
    "parsing tracking data image_store image_processing barlow_twins checkpoint model_folder dsa",  # I/O, maths
    "learners modeling batch_norm teachers teacher_cache memory subsets targets training_loop "
    "methods.krr_st.pool methods.krr_st.memory methods.mkdt.matching",  # models, the loop
    "teacher_training teacher_import pretraining training_sets transfer distilled_set hub dataset_card model_cards "
    "trajectories",  # stages
    "methods.distiller methods.krr_st.distiller methods.mkdt.memory methods.mkdt.distiller distill",  # reads stages
    # the benchmark: reads every stage; no stage reads it
    "evaluation evaluation.presets evaluation.config evaluation.methods evaluation.results evaluation.paired "
    "evaluation.resume evaluation.ridge_probe evaluation.report evaluation.runner",
    "cli __init__",
]
LAYER = {name: level for level, names in enumerate(LAYERS) for name in names.split()}


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        if "metrics" in path.parts:  # `evaluate` modules, loaded by path
            continue
        parts = path.with_suffix("").relative_to(PACKAGE).parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)] = path
    return found


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Project modules that `name` imports, at module level or inside functions."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
            found |= {t for t in (target, *(f"{target}.{a.name}" for a in node.names)) if t in known and t != name}
    return found


GRAPH = {name: imports(name, path, set(modules())) for name, path in modules().items()}


MAX_LINES = 450  # a module past this holds more than one idea: split it by idea (issue 12)


@pytest.mark.parametrize("name", sorted(GRAPH))
def test_no_module_is_longer_than_one_idea(name):
    lines = len(modules()[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines (> {MAX_LINES}): split it by idea"


def test_every_module_has_a_layer():
    assert set(GRAPH) == set(LAYER), "add new modules to LAYERS; remove deleted ones"


@pytest.mark.parametrize("name", sorted(GRAPH))
def test_no_module_imports_one_above_it(name):
    above = sorted(target for target in GRAPH[name] if LAYER[target] > LAYER[name])
    assert not above, f"{name} (layer {LAYER[name]}) imports {above} from above"


def test_no_import_goes_in_a_circle():
    done, cycles = set(), []

    def visit(name, path):
        for target in GRAPH[name]:
            if target in path:
                cycles.append(path[path.index(target):] + [target])
            elif target not in done:
                visit(target, path + [target])
        done.add(name)

    for name in GRAPH:
        visit(name, [name])
    assert not cycles, cycles[:3]
