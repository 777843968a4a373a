"""The `hf-ssdd` command and the recipe configs it reads."""

import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest

from hf_ssdd.cli import COMMANDS, STAGES, main
from hf_ssdd.config import DistillConfig, parse_config

RECIPES = Path(__file__).parents[1] / "recipes" / "configs"


def test_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "hf_ssdd.cli", "--help"], capture_output=True, text=True).stdout
    for command in (*STAGES, *COMMANDS):
        assert f"  {command} " in out


def test_importing_the_package_registers_the_learners_with_the_auto_classes():
    code = "import hf_ssdd, transformers; print(transformers.AutoConfig.for_model('hf_ssdd_learner').arch)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "convnet"


def test_unknown_command_exits_with_usage(capsys):
    with pytest.raises(SystemExit) as info:
        main(["distil"])
    assert info.value.code == 2 and "usage: hf-ssdd" in capsys.readouterr().out


def test_push_uploads_the_folder_with_the_hub_client(tmp_path):
    (tmp_path / "README.md").write_text("card")
    with mock.patch("hf_ssdd.hub.push_to_hub", return_value="https://hf.co/datasets/u/x") as push:
        main(["push", str(tmp_path), "u/x", "--private"])
    push.assert_called_once_with(str(tmp_path), "u/x", repo_type="dataset", private=True)


@pytest.mark.parametrize("path", sorted(RECIPES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_recipe_config_parses(path):
    from hf_ssdd.cli import _load

    config_cls = DistillConfig if "teacher" not in path.stem else _load(STAGES["train-teacher"].config)
    cfg = parse_config(config_cls, ["--config", str(path)])
    assert cfg.output_dir.startswith("outputs/")
