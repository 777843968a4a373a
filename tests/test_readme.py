"""The README cannot drift from the code: every `hf-ssdd` command it shows answers `--help` and takes each option it
is shown with, and every file a command names exists."""

import re
import shlex
from pathlib import Path

import pytest

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
