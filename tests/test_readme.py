"""The README cannot drift from the code: every `hf-ssdd` command it shows answers `--help` and takes each option it
is shown with, every file a command names exists, and every Python snippet runs and gives what its comments say."""

import ast
import re
import shlex
import shutil
from pathlib import Path

import pytest
import torch

from hf_ssdd.cli import main

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()


def shell_lines() -> list[str]:
    """The README's shell commands, one per line: continuations joined, comments dropped."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", README, re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def hf_ssdd_commands() -> list[list[str]]:
    """Each `hf-ssdd ...` invocation as its words, from the command on (`[--private]`, `...` and `&` dropped)."""
    commands = []
    for line in shell_lines():
        for part in re.split(r"&&|;", line):
            words = shlex.split(re.sub(r"\[(--\w+)\]|\.\.\.|&$", r"\1", part))
            at = [i for i, word in enumerate(words) if word.endswith("hf-ssdd")]
            if at:
                commands.append(words[at[0] + 1:])
    return commands


COMMANDS = hf_ssdd_commands()


def test_the_readme_shows_every_stage():
    assert {"train-teacher", "import-teacher", "trajectories", "distill", "plan", "pretrain", "transfer",
            "push"} <= {words[0] for words in COMMANDS}


@pytest.mark.parametrize("words", COMMANDS, ids=[" ".join(w)[:60] for w in COMMANDS])
def test_each_command_answers_help_and_takes_the_options_it_is_shown_with(words, capsys):
    command, options = words[0], [w for w in words[1:] if w.startswith("--")]
    method = words[words.index("--method"):][:2] if "--method" in words else []
    config = words[words.index("--config") + 1] if "--config" in words else None
    if config:
        assert (ROOT / config).is_file(), f"{config} of `hf-ssdd {' '.join(words)}` is missing"
        yaml_method = re.search(r"^method: (\w+)", (ROOT / config).read_text(), re.MULTILINE)
        method = method or (["--method", yaml_method.group(1)] if yaml_method else [])
    with pytest.raises(SystemExit) as info:
        main([command, *method, "--help"])
    usage = capsys.readouterr().out
    assert info.value.code == 0, f"`hf-ssdd {command} --help` failed"
    unknown = [option for option in options if not re.search(rf"{re.escape(option)}\b", usage)]
    assert not unknown, f"`hf-ssdd {' '.join(words)}`: {unknown} are not options of {command}"


def test_every_script_and_config_the_readme_runs_exists():
    named = {word for line in shell_lines() for word in line.split()
             if re.fullmatch(r"[\w./-]+\.(py|sh|yaml)", word) and not word.startswith("outputs/")}
    assert named, "the README names no file: the pattern is wrong"
    missing = sorted(path for path in named if not (ROOT / path).is_file())
    assert not missing, f"the README runs files that do not exist: {missing}"


# ---------------------------------------------------------------------------------------------------------------------
# The Python snippets: each runs as shown, offline and at tiny sizes, and gives what its comments promise
# ---------------------------------------------------------------------------------------------------------------------

SNIPPETS = re.findall(r"```python\n(.*?)```", README, re.DOTALL)
TINY = {"num_synthetic": 4, "max_steps": 2, "batch_size": 16, "learner_width": 8, "pool_steps": 2}  # ~1 s, not hours


class Tiny(ast.NodeTransformer):
    """The snippets as they run in a test: a config's sizes made tiny, its `dataset` the tests' tiny source, and the
    Hub repo of the loading snippet the folder the distillation snippet wrote ("or the local OUTPUT_DIR")."""

    def __init__(self, source: str):
        self.source = source

    def visit_Call(self, node):
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id.endswith("Config"):
            for keyword in node.keywords:
                if keyword.arg in TINY:
                    keyword.value = ast.Constant(TINY[keyword.arg])
                elif keyword.arg == "dataset":
                    keyword.value = ast.Constant(self.source)
        return node

    def visit_Constant(self, node):
        return ast.Constant("outputs/my-set") if node.value == "user/name" else node


def promises(snippet: str) -> list[tuple[str, list[str], list[int]]]:
    """What the comments promise of a variable: `x = ...  # (m, C, H, W)` a tensor of 4 dimensions, `d = f()  #
    Type: a (m, d), b` an object with attributes `a` (2 dimensions) and `b`. (variable, attributes, ranks)"""
    found = []
    for line in snippet.splitlines():
        match = re.match(r"(\w+) = .*?#\s*(.*)", line)
        if not match:
            continue
        name, comment = match.groups()
        typed = re.match(r"[A-Z]\w*: (.*)", comment)
        if typed:
            attributes = re.findall(r"(\w+)(?: \(([^)]*)\))?(?:, |$)", typed.group(1))
            found.append((name, [a for a, _ in attributes], [len(s.split(",")) if s else 0 for _, s in attributes]))
        elif comment.startswith("("):
            found.append((name, [], [len(comment[1:comment.index(")")].split(","))]))
    return found


def test_the_readme_shows_python_snippets_and_the_promises_are_read():
    assert len(SNIPPETS) >= 2
    assert ("distilled", ["pixel_values", "targets", "metadata"], [4, 2, 0]) in promises(SNIPPETS[0])
    assert ("x", [], [4]) in promises(SNIPPETS[1]) and ("y", [], [2]) in promises(SNIPPETS[1])


def test_every_python_snippet_runs_and_gives_what_its_comments_promise(tiny_source, tiny_teacher, tmp_path,
                                                                       monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(tiny_teacher, "outputs/fashion-mnist-teacher")  # the README's teacher, as train-teacher writes it
    scope = {}
    for snippet in SNIPPETS:
        tree = ast.fix_missing_locations(Tiny(tiny_source).visit(ast.parse(snippet)))
        exec(compile(tree, "README.md", "exec"), scope)
        for name, attributes, ranks in promises(snippet):
            value = scope[name]
            missing = [a for a in attributes if not hasattr(value, a)]
            assert not missing, f"README: `{name}` promises {missing}, which {type(value).__name__} does not have"
            tensors = [getattr(value, a) for a in attributes] if attributes else [value]
            for attribute, tensor, rank in zip(attributes or [name], tensors, ranks):
                shape = tuple(tensor.shape) if rank else None
                assert not rank or len(shape) == rank, f"README: `{attribute}` has shape {shape}, not rank {rank}"
    assert len(scope["distilled"].pixel_values) == TINY["num_synthetic"] and "teacher" in scope["again"].metadata
    assert torch.equal(scope["x"], scope["distilled"].pixel_values)


def python_scripts() -> list[list[str]]:
    """Each Python script the README runs (`python X.py`, `accelerate launch ... X.py`, `torchrun ... X.py`), as its
    path and the options it is shown with (`[--quick]` counts as `--quick`)."""
    scripts = []
    for line in shell_lines():
        words = re.sub(r"\[(--\w+)\]", r"\1", line).split()
        at = [i for i, word in enumerate(words) if word.endswith(".py")]
        if at and "hf-ssdd" not in line:
            scripts.append([words[at[0]], *(w for w in words[at[0] + 1:] if w.startswith("--"))])
    return scripts


SCRIPTS = python_scripts()


@pytest.mark.parametrize("words", SCRIPTS, ids=[" ".join(w)[:60] for w in SCRIPTS])
def test_each_python_script_answers_help_and_takes_the_options_it_is_shown_with(words, capsys, monkeypatch):
    import runpy

    monkeypatch.setattr("sys.argv", [words[0], "--help"])
    monkeypatch.syspath_prepend(str((ROOT / words[0]).parent))  # as `python X.py` puts X's folder first
    with pytest.raises(SystemExit) as info:
        runpy.run_path(str(ROOT / words[0]), run_name="__main__")
    usage = capsys.readouterr().out
    assert info.value.code == 0, f"`{words[0]} --help` failed"
    unknown = [option for option in words[1:] if not re.search(rf"{re.escape(option)}\b", usage)]
    assert not unknown, f"`{' '.join(words)}`: {unknown} are not options of {words[0]}"
