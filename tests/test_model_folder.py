"""The model-folder writer: what it writes feeds the model as it was trained, and a rewrite keeps the logs."""

import json
import math

import torch

from hf_ssdd.data import Normalization
from hf_ssdd.model_folder import preprocessor_config, save_model_folder
from hf_ssdd.pretrain_config import PretrainConfig


def test_preprocessor_config_reproduces_the_training_input():
    config = preprocessor_config(56, Normalization((0.25, 0.5, 0.75), (0.1, 0.2, 0.3)))
    assert config["size"] == {"height": 56, "width": 56}
    assert config["image_mean"] == [0.25, 0.5, 0.75] and config["image_std"] == [0.1, 0.2, 0.3]
    assert config["do_rescale"] and math.isclose(config["rescale_factor"], 1 / 255) and config["do_normalize"]


def test_a_model_folder_loads_back_and_keeps_the_tracker_logs_written_before_it(tmp_path):
    from transformers import AutoModel, ResNetConfig, ResNetModel

    model = ResNetModel(ResNetConfig(embedding_size=4, hidden_sizes=[4], depths=[1]))
    out = tmp_path / "model"
    (out / "runs").mkdir(parents=True)
    (out / "runs" / "events").write_text("logged during training")
    save_model_folder(model, out, 8, Normalization((0.5,), (0.25,)), PretrainConfig(), "pretrain", [{"loss": 1.0}],
                      "# card")
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md", "config.json", "model.safetensors", "preprocessor_config.json", "pretrain_config.yaml", "runs",
        "train_log.json",
    ]
    assert (out / "runs" / "events").read_text() == "logged during training"
    assert json.loads((out / "train_log.json").read_text()) == [{"loss": 1.0}]
    again = AutoModel.from_pretrained(out)
    for name, tensor in model.state_dict().items():
        assert torch.equal(again.state_dict()[name], tensor), name
