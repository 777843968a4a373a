"""The method registry: every method is a config class and a distiller found by name, and an option of one method
given to another is a one-line error naming the method it belongs to."""

import dataclasses
import typing

import pytest

from hf_ssdd.cli import main
from hf_ssdd.config import ConfigError
from hf_ssdd.methods import DEFAULT_METHOD, METHODS, config_class, load, method_named
from hf_ssdd.methods.config import DistillConfig, method_of
from hf_ssdd.methods.distiller import Distiller

REQUIRED = {"mkdt": {"trajectories": "experts"}}


@pytest.mark.parametrize("name", METHODS)
def test_a_method_is_a_config_and_a_distiller_found_by_its_name(name):
    config_cls, distiller = config_class(name), load(METHODS[name].distiller)
    assert issubclass(config_cls, DistillConfig) and issubclass(distiller, Distiller)
    assert config_cls.method_name() == name == config_cls(**REQUIRED.get(name, {})).method
    assert callable(load(METHODS[name].plan))


def test_krr_st_is_the_default_method():
    assert DEFAULT_METHOD == "krr_st" == method_of([])
    assert config_class(DEFAULT_METHOD).__name__ == "KRRSTConfig"


def test_a_config_refuses_another_methods_name():
    with pytest.raises(ConfigError, match="method='mkdt': KRRSTConfig configures 'krr_st'"):
        config_class("krr_st")(method="mkdt")
    with pytest.raises(ConfigError, match="method='dsa' is not one of krr_st, mkdt"):
        method_named("dsa")


def test_the_method_comes_from_the_command_line_then_the_yaml_file(tmp_path):
    (tmp_path / "c.yaml").write_text("method: mkdt\nnum_synthetic: 10\n")
    assert method_of(["--config", str(tmp_path / "c.yaml")]) == "mkdt"
    assert method_of(["--config", str(tmp_path / "c.yaml"), "--method", "krr_st"]) == "krr_st"
    assert method_of(["--method=mkdt"]) == "mkdt"


def own_options(name: str) -> set[str]:
    shared = {f.name for f in dataclasses.fields(DistillConfig)}
    return {f.name for f in dataclasses.fields(config_class(name))} - shared


@pytest.mark.parametrize("where", ["command line", "yaml"])
@pytest.mark.parametrize("method, other", [("mkdt", "krr_st"), ("krr_st", "mkdt")])
def test_an_option_of_another_method_is_one_line_naming_it(method, other, where, tmp_path, capsys):
    option = sorted(own_options(other) - own_options(method))[0]
    value = "1"
    (tmp_path / "c.yaml").write_text(f"method: {method}\n{option}: {value}\n")
    given = [f"--{option}", value] if where == "command line" else []
    argv = ["distill", "--method", method, "--trajectories", "t", "--output_dir", str(tmp_path / "out"), *given]
    if where == "yaml":
        argv = ["distill", "--config", str(tmp_path / "c.yaml"), "--trajectories", "t",
                "--output_dir", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1, err
    assert f"--{option} is an option of --method {other}, not of --method {method}" in err
    assert not (tmp_path / "out").exists()


def test_the_methods_own_options_do_not_overlap_the_shared_ones():
    """Each method's config adds options or changes a shared one's default, never a second meaning of a name."""
    shared = typing.get_type_hints(DistillConfig)  # not `field.type`, which HfArgumentParser overwrites
    for name in METHODS:
        for option, hint in typing.get_type_hints(config_class(name)).items():
            assert shared.get(option, hint) == hint, (name, option)
