"""The `hf-ssdd` command and the recipe configs it reads.

The tests of `--help` and of wrong values are generated from the CLI's own table (`STAGES`, `COMMANDS`) and from the
config dataclasses, so a new stage, field or choice is covered without editing them.
"""

import dataclasses
import re
import subprocess
import sys
import typing
from pathlib import Path
from unittest import mock

import pytest

from hf_ssdd import cli
from hf_ssdd.cli import COMMANDS, STAGES, main
from hf_ssdd.methods import METHODS, config_class
from hf_ssdd.parsing import parse_config

RECIPES = Path(__file__).parents[1] / "recipes" / "configs"
HF_SSDD = Path(sys.executable).with_name("hf-ssdd")  # the console script installed beside this Python

REQUIRED = {  # what a stage (or a method of `distill` and `plan`) cannot run without; everything else has a default
    "transfer": ["--target", "digits"],
    "import-teacher": ["checkpoint.pt", "--image_mean", "0.5", "--image_std", "0.25"],
    "mkdt": ["--trajectories", "experts"],
}
WRONG_TYPED = {bool: "maybe", int: "1.5x", float: "abc"}  # plain strings have no wrong type


def variants() -> list[tuple[str, list[str], type]]:
    """`(stage, least arguments, config class)`: every stage once, `distill` and `plan` once per method."""
    found = []
    for stage, spec in STAGES.items():
        if spec.by_method:
            found += [(stage, ["--method", name, *REQUIRED.get(name, [])], config_class(name)) for name in METHODS]
        else:
            found.append((stage, REQUIRED.get(stage, []), cli._load(spec.config)))
    return found


VARIANTS = variants()
IDS = [f"{stage}-{argv[1]}" if STAGES[stage].by_method else stage for stage, argv, _ in VARIANTS]


def value_type(hint) -> type:
    """The type argparse converts each value to: `int | None` -> int, `list[float] | None` -> float."""
    while typing.get_args(hint):
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    return hint


def wrong_values(config_cls: type):
    """(field, value) pairs the parser must refuse: a value of the wrong type, and one outside a field's choices."""
    hints = typing.get_type_hints(config_cls)  # not `field.type`, which HfArgumentParser overwrites
    for f in dataclasses.fields(config_cls):
        if value_type(hints[f.name]) in WRONG_TYPED:
            yield f.name, WRONG_TYPED[value_type(hints[f.name])]
        if "choices" in f.metadata:
            yield f.name, "not-a-choice"


WRONG = [(stage, least, name, value) for stage, least, config_cls in VARIANTS
         for name, value in wrong_values(config_cls) if name != "method"]
WRONG += [(stage, [], "method", "not-a-choice") for stage, spec in STAGES.items() if spec.by_method]


@pytest.fixture
def runs(monkeypatch):
    """The stages' run functions, replaced by a list that records each config they would have run on."""
    calls, load, configs = [], cli._load, {stage.config for stage in STAGES.values() if not stage.by_method}
    monkeypatch.setattr(cli, "_load", lambda path: load(path) if path in configs else calls.append)
    return calls


def test_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "hf_ssdd.cli", "--help"], capture_output=True, text=True).stdout
    for command in (*STAGES, *COMMANDS):
        assert f"  {command} " in out


def test_importing_the_package_registers_the_learners_with_the_auto_classes():
    code = "import hf_ssdd, transformers; print(transformers.AutoConfig.for_model('hf_ssdd_learner').arch)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "convnet"


def test_unknown_command_is_one_line_listing_the_commands(capsys):
    with pytest.raises(SystemExit) as info:
        main(["distil"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1
    assert err.startswith("hf-ssdd: error: unknown command 'distil'; choose from train-teacher, import-teacher, ")


@pytest.mark.parametrize("command", COMMANDS)
def test_help_answers_for_every_command(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0 and capsys.readouterr().out.startswith(f"usage: hf-ssdd {command} ")


@pytest.mark.parametrize("stage, least, config_cls", VARIANTS, ids=IDS)
def test_help_answers_for_every_stage_and_method_and_lists_every_option(stage, least, config_cls, capsys):
    with pytest.raises(SystemExit) as info:
        main([stage, *(least[:2] if STAGES[stage].by_method else []), "--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0 and out.startswith(f"usage: hf-ssdd {stage} ")
    assert not {f"--{f.name}" for f in dataclasses.fields(config_cls)} - set(re.findall(r"--\w+", out))


@pytest.mark.parametrize("stage, least, config_cls", VARIANTS, ids=IDS)
def test_the_least_command_line_of_every_stage_and_method_runs_it(stage, least, config_cls, tmp_path, runs):
    main([stage, "--output_dir", str(tmp_path / "out"), *least])
    assert [(type(cfg), cfg.output_dir) for cfg in runs] == [(config_cls, str(tmp_path / "out"))]


@pytest.mark.parametrize("where", ["command line", "yaml"])
@pytest.mark.parametrize("stage, least, name, value", WRONG, ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_a_wrong_value_is_one_line_naming_it_and_nothing_runs(stage, least, name, value, where, tmp_path, capsys,
                                                              runs):
    (tmp_path / "c.yaml").write_text(f"{name}: {value}\n")
    wrong = [f"--{name}", value] if where == "command line" else ["--config", str(tmp_path / "c.yaml")]
    with pytest.raises(SystemExit) as info:
        main([stage, "--output_dir", str(tmp_path / "out"), *least, *wrong])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1 and err.startswith(f"hf-ssdd {stage}: error: ")
    assert f"--{name}" in err and value in err and "Traceback" not in err
    assert runs == [] and not (tmp_path / "out").exists()


def test_a_wrong_value_reaches_a_real_terminal_as_one_line(tmp_path):
    argv = [HF_SSDD, "distill", "--output_dir", tmp_path / "out", "--max_steps", "abc"]
    result = subprocess.run(argv, capture_output=True, text=True)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        "hf-ssdd distill: error: argument --max_steps/--max-steps: invalid int value: 'abc' "
        "(see hf-ssdd distill --help)"
    ]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["push"], "hf-ssdd push: error: the following arguments are required: folder, repo_id"),
        (["push", "f", "u/x", "--repo_type", "space"], "argument --repo_type: invalid choice: 'space'"),
        (["card", "f"], "hf-ssdd card: error: the following arguments are required: --results"),
        (["benchmark", "--config", "/no/such.yaml"], "hf-ssdd benchmark: error: config file '/no/such.yaml'"),
        (["benchmark", "--config", "/no/such.yaml", "--seeds"], "overrides come as --key value pairs"),
    ],
)
def test_a_mistake_in_the_other_commands_is_one_line_too(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1 and message in err


@pytest.mark.parametrize("override, message", [
    (["--seeds", "abc"], "hf-ssdd benchmark: error: --seeds='abc' on the command line is not of type list[int]"),
    (["--colour", "red"], "hf-ssdd benchmark: error: unknown key --colour on the command line; valid keys"),
])
def test_a_benchmark_override_is_type_checked_and_named_as_an_option(override, message, tmp_path, capsys):
    config = tmp_path / "bench.yaml"
    config.write_text(f"distilled: [set]\ntargets: [{{dataset: digits}}]\noutput_dir: {tmp_path / 'out'}\n")
    with pytest.raises(SystemExit) as info:
        main(["benchmark", "--config", str(config), *override])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1 and message in err
    assert not (tmp_path / "out").exists()


def test_push_uploads_the_folder_with_the_hub_client(tmp_path):
    (tmp_path / "README.md").write_text("card")
    with mock.patch("hf_ssdd.hub.push_to_hub", return_value="https://hf.co/datasets/u/x") as push:
        main(["push", str(tmp_path), "u/x", "--private"])
    push.assert_called_once_with(str(tmp_path), "u/x", repo_type="dataset", private=True)


@pytest.mark.parametrize("path", sorted(RECIPES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_recipe_config_parses(path):
    from hf_ssdd.methods.config import method_of

    stage = next((s for s in ("teacher", "trajectories") if path.stem.endswith(s)), None)
    config_cls = config_class(method_of(["--config", str(path)])) if stage is None else cli._load(
        STAGES["train-teacher" if stage == "teacher" else stage].config)
    cfg = parse_config(config_cls, ["--config", str(path)])
    assert cfg.output_dir.startswith("outputs/")


@pytest.mark.parametrize("stage", ["train-teacher", "trajectories", "distill", "pretrain", "transfer"])
def test_a_bad_tracker_is_reported_before_the_inputs_a_run_needs(stage, capsys):
    """Option values are checked first: `transfer --report_to bogus` names the tracker, not the missing target."""
    with pytest.raises(SystemExit) as info:
        main([stage, "--report_to", "bogus_tracker"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "bogus_tracker is not an installed tracker" in err and len(err.splitlines()) == 1
