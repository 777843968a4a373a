"""Configuration: defaults < YAML < command line; unknown keys and wrong types are errors."""

import dataclasses

import pytest

from hf_ssdd.config import ConfigError, DistillConfig, parse_config, save_config


def test_defaults_are_the_papers_protocol():
    cfg = DistillConfig()
    assert (cfg.num_synthetic, cfg.batch_size, cfg.learning_rate, cfg.max_steps) == (1000, 1024, 1e-4, 160_000)
    assert (cfg.pool_size, cfg.pool_steps, cfg.pool_learning_rate, cfg.pool_momentum) == (10, 1000, 0.1, 0.9)
    assert (cfg.pool_weight_decay, cfg.ridge, cfg.final_lr_ratio, cfg.crop_padding) == (1e-3, 1e-6, 1e-3, 4)
    assert (cfg.learner_depth, cfg.learner_width, cfg.learner_norm, cfg.learner_pooling) == (3, 128, "batch", "avg")


def test_yaml_overrides_defaults_and_command_line_overrides_yaml(tmp_path):
    (tmp_path / "c.yaml").write_text("max_steps: 10\nbatch_size: 64\nmean: [0.5]\nflip: false\n")
    cfg = parse_config(DistillConfig, ["--config", str(tmp_path / "c.yaml"), "--batch_size", "32"])
    assert (cfg.max_steps, cfg.batch_size, cfg.mean, cfg.flip, cfg.num_synthetic) == (10, 32, [0.5], False, 1000)


def test_saved_config_parses_back_to_the_same_config(tmp_path):
    cfg = DistillConfig(teacher="t", max_steps=7, mean=[0.1, 0.2, 0.3], std=[1.0, 1.0, 1.0], channels=3)
    save_config(cfg, tmp_path / "c.yaml")
    assert parse_config(DistillConfig, ["--config", str(tmp_path / "c.yaml")]) == cfg


def test_unknown_yaml_key_is_an_error_naming_it(tmp_path):
    (tmp_path / "c.yaml").write_text("max_step: 10\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['max_step'\]"):
        parse_config(DistillConfig, ["--config", str(tmp_path / "c.yaml")])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--max_steps", "1.5"], "invalid int value: '1.5'"),
        (["--no_such_option", "1"], "unrecognized arguments: --no_such_option"),
        (["--num_synthetic", "0"], "num_synthetic=0 must be positive"),
        (["--learner_norm", "layer"], "learner_norm='layer' is not one of"),
        (["--channels", "2"], "channels=2 is not supported"),
        (["--teacher_views", "-1"], "teacher_views=-1 must be >= 0"),
        (["--krr_solver", "lu"], "krr_solver='lu' is not one of auto, dual, primal, reference"),
        (["--config", "/no/such.yaml"], "does not exist"),
    ],
)
def test_bad_values_exit_with_a_message_naming_them(argv, message, capsys):
    with pytest.raises((SystemExit, ConfigError)) as info:
        parse_config(DistillConfig, argv)
    text = capsys.readouterr().err + (str(info.value) if info.type is ConfigError else "")
    assert message in text


def test_wrong_type_in_yaml_is_caught_like_on_the_command_line(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text("batch_size: many\n")
    with pytest.raises(SystemExit):
        parse_config(DistillConfig, ["--config", str(tmp_path / "c.yaml")])
    assert "invalid int value: 'many'" in capsys.readouterr().err


def test_every_field_has_help():
    assert all(f.metadata.get("help") for f in dataclasses.fields(DistillConfig))
