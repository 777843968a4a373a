"""Parsing: defaults < YAML < command line; unknown keys and wrong types are one-line errors, exit 2."""

from dataclasses import dataclass, field

import pytest

from hf_ssdd.config import save_config
from hf_ssdd.methods.krr_st.config import KRRSTConfig
from hf_ssdd.parsing import parse_config


def parse_error(config_cls, argv, capsys) -> str:
    """The one line `parse_config` prints before it exits with status 2."""
    with pytest.raises(SystemExit) as info:
        parse_config(config_cls, argv, prog="hf-ssdd x")
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1 and err.startswith("hf-ssdd x: error: "), err
    assert err.endswith(" (see hf-ssdd x --help)\n")
    return err


def test_yaml_overrides_defaults_and_command_line_overrides_yaml(tmp_path):
    (tmp_path / "c.yaml").write_text("max_steps: 10\nbatch_size: 64\nmean: [0.5]\nflip: false\n")
    cfg = parse_config(KRRSTConfig, ["--config", str(tmp_path / "c.yaml"), "--batch_size", "32"])
    assert (cfg.max_steps, cfg.batch_size, cfg.mean, cfg.flip, cfg.num_synthetic) == (10, 32, [0.5], False, 1000)


def test_saved_config_parses_back_to_the_same_config(tmp_path):
    cfg = KRRSTConfig(teacher="t", max_steps=7, mean=[0.1, 0.2, 0.3], std=[1.0, 1.0, 1.0], channels=3)
    save_config(cfg, tmp_path / "c.yaml")
    assert parse_config(KRRSTConfig, ["--config", str(tmp_path / "c.yaml")]) == cfg


def test_yaml_values_starting_with_a_dash_stay_values(tmp_path):
    (tmp_path / "c.yaml").write_text("teacher: -t\nmean: [-0.5]\n")
    cfg = parse_config(KRRSTConfig, ["--config", str(tmp_path / "c.yaml")])
    assert (cfg.teacher, cfg.mean) == ("-t", [-0.5])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--max_steps", "1.5"], "argument --max_steps/--max-steps: invalid int value: '1.5'"),
        (["--flip", "maybe"], "argument --flip: Truthy value expected: got maybe"),
        (["--mean", "0.5", "abc"], "argument --mean: invalid float value: 'abc'"),
        (["--no_such_option", "1"], "unrecognized arguments: --no_such_option 1"),
        (["--max_step", "10"], "unrecognized arguments: --max_step 10"),  # no abbreviations
        (["--num_synthetic", "0"], "num_synthetic=0 must be positive"),
        (["--learning_rate", "nan"], "learning_rate=nan must be positive and finite"),
        (["--max_memory_gb", "inf"], "max_memory_gb=inf must be positive and finite"),
        (["--learner_norm", "layer"], "argument --learner_norm/--learner-norm: invalid choice: 'layer'"),
        (["--channels", "2"], "argument --channels: invalid choice: 2 (choose from 1, 3)"),
        (["--teacher_views", "-1"], "teacher_views=-1 must be >= 0"),
        (["--krr_solver", "lu"], "invalid choice: 'lu' (choose from 'auto', 'dual', 'primal', 'reference')"),
        (["--config"], "argument --config: expected one argument"),
        (["--config", "/no/such.yaml"], "config file '/no/such.yaml' does not exist"),
    ],
)
def test_bad_values_exit_with_one_line_naming_them(argv, message, capsys):
    assert message in parse_error(KRRSTConfig, argv, capsys)


@pytest.mark.parametrize(
    "yaml, message",
    [
        ("batch_size: many", "argument --batch_size/--batch-size: invalid int value: 'many'"),
        ("learner_norm: layer", "argument --learner_norm/--learner-norm: invalid choice: 'layer'"),
        ("max_step: 10", r"unknown key(s) ['max_step'] in"),
        ("max_steps: [1, 2]", "max_steps=[1, 2] in"),  # YAML can say what the command line cannot: a list ...
        ("max_steps: null", "max_steps=null in"),  # ... and a null; each only where the field's type takes it
        ("- max_steps", "must hold a mapping"),
    ],
)
def test_a_mistake_in_the_yaml_file_is_caught_like_on_the_command_line(yaml, message, tmp_path, capsys):
    (tmp_path / "c.yaml").write_text(yaml + "\n")
    assert message in parse_error(KRRSTConfig, ["--config", str(tmp_path / "c.yaml")], capsys)


def test_nulls_in_yaml_are_kept_where_the_field_takes_them(tmp_path):
    (tmp_path / "c.yaml").write_text("teacher: null\nmax_samples: null\n")
    cfg = parse_config(KRRSTConfig, ["--config", str(tmp_path / "c.yaml"), "--teacher", "t"])
    assert (cfg.teacher, cfg.max_samples) == ("t", None)


@dataclass
class Import:
    checkpoint: str | None = field(default=None, metadata={"help": "File.", "positional": True})
    mean: list[float] | None = field(default=None, metadata={"help": "Mean."})


@pytest.mark.parametrize("argv, expected", [
    (["a.pt", "--mean", "0.5", "0.2"], Import("a.pt", [0.5, 0.2])),
    (["--mean", "0.5", "--", "a.pt"], Import("a.pt", [0.5])),  # after a list option, `--` ends it
    (["--checkpoint", "b.pt"], Import("b.pt")),  # also an option, as in YAML
    (["--checkpoint", "b.pt", "a.pt"], Import("a.pt")),  # the positional wins
    ([], Import()),
])
def test_a_positional_field_is_also_an_option(argv, expected):
    assert parse_config(Import, argv) == expected


def test_a_positional_field_comes_from_yaml_too_and_the_command_line_wins(tmp_path):
    (tmp_path / "c.yaml").write_text("checkpoint: y.pt\n")
    assert parse_config(Import, ["--config", str(tmp_path / "c.yaml")]).checkpoint == "y.pt"
    assert parse_config(Import, ["--config", str(tmp_path / "c.yaml"), "a.pt"]).checkpoint == "a.pt"


def test_a_second_positional_is_one_line(capsys):
    assert "unrecognized arguments: b.pt" in parse_error(Import, ["a.pt", "b.pt"], capsys)


def test_help_text_is_printed_as_written_even_with_a_percent_sign(capsys):
    @dataclass
    class Budget:
        share: float = field(default=0.9, metadata={"help": "90% of what is free (20%, %d, %(prog)s)."})

    with pytest.raises(SystemExit) as info:
        parse_config(Budget, ["--help"], prog="hf-ssdd x")
    out = " ".join(capsys.readouterr().out.split())  # as wide as the terminal: compare the words
    assert info.value.code == 0 and "90% of what is free (20%, %d, %(prog)s). (default: 0.9)" in out
