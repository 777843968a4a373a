"""Pre-training on a distilled set: the learner regresses the targets, and is saved as a Hub model with a card."""

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModel, AutoModelForImageClassification

from hf_ssdd.config import ConfigError, PretrainConfig
from hf_ssdd.data import Normalization
from hf_ssdd.distilled_set import DistilledSet
from hf_ssdd.pretraining import TrainingSet, fit_learner, pretrain

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def test_pretrain_fits_the_targets_and_saves_an_auto_model(tiny_distilled, tmp_path):
    cfg = PretrainConfig(distilled=tiny_distilled, num_epochs=60, learning_rate=0.05, output_dir=str(tmp_path / "p"),
                         report_to="none")
    out = pretrain(cfg)
    distilled = DistilledSet.load(tiny_distilled)
    model = AutoModelForImageClassification.from_pretrained(out).eval()
    assert model.config.arch == "convnet" and model.config.arch_options == {"depth": 2, "width": 4, "norm": "batch",
                                                                            "pooling": "avg"}
    assert AutoModel.from_pretrained(out).feature_dim == model.learner.feature_dim
    log = json.loads((out / "train_log.json").read_text())
    assert log[-1]["step"] == 60 and log[-1]["loss"] < 0.5 * log[0]["loss"]
    with torch.no_grad():
        fitted = torch.nn.functional.mse_loss(model(pixel_values=distilled.pixel_values).logits, distilled.targets)
    assert fitted < 0.01 * distilled.targets.pow(2).mean(), "in eval mode too, the head reproduces the targets"
    card = (out / "README.md").read_text()
    assert "hf_ssdd_learner" in card and f"`{Path(tiny_distilled).name}`" in card
    assert str(Path(tiny_distilled).parent) not in card, "a local folder is named, never located"
    preprocessing = json.loads((out / "preprocessor_config.json").read_text())
    assert preprocessing["image_mean"] == pytest.approx(list(distilled.mean))


def test_another_architecture_is_chosen_with_arch(tiny_distilled, tmp_path):
    cfg = PretrainConfig(distilled=tiny_distilled, arch="resnet10", num_epochs=1, output_dir=str(tmp_path / "r"),
                         report_to="none")
    out = pretrain(cfg)
    assert AutoModelForImageClassification.from_pretrained(out).config.arch == "resnet10"


def test_labels_are_learned_by_cross_entropy():
    torch.manual_seed(0)
    x = torch.randn(20, 1, 8, 8)
    labels = (x.mean((1, 2, 3)) > 0).long()
    from hf_ssdd.modeling import learner_config, new_model

    model = new_model(learner_config("convnet", 1, 8, 2, depth=1, width=4))
    from accelerate import Accelerator

    data = TrainingSet(x, labels, Normalization((0.0,), (1.0,)))
    cfg = PretrainConfig(num_epochs=80, learning_rate=0.05, logging_steps=10)
    history = fit_learner(model, data, cfg, Accelerator())
    assert data.uses_labels and history[-1]["loss"] < 0.3
    assert (model(pixel_values=x).logits.argmax(1) == labels).float().mean() > 0.9


def test_knowledge_distillation_regresses_the_teacher_in_eval_mode(tiny_distilled, tiny_teacher, tmp_path):
    from hf_ssdd.teachers import Teacher

    out = pretrain(PretrainConfig(distilled=tiny_distilled, teacher=tiny_teacher, num_epochs=2, crop_padding=2,
                                  flip=True, output_dir=str(tmp_path / "kd"), report_to="none"))
    assert AutoModelForImageClassification.from_pretrained(out).config.num_labels == Teacher.from_pretrained(
        tiny_teacher).dim
    assert "knowledge distillation" in (out / "README.md").read_text()


def test_bad_inputs_are_clear_errors(tiny_source, tmp_path):
    with pytest.raises(ConfigError, match="no distilled set"):
        pretrain(PretrainConfig(output_dir=str(tmp_path / "a")))
    with pytest.raises(ConfigError, match="give a distilled set saved by hf-ssdd"):
        pretrain(PretrainConfig(distilled=tiny_source, output_dir=str(tmp_path / "b")))


def test_a_transformers_architecture_is_pretrained_and_transferred_alike(tiny_distilled, tiny_labelled, tmp_path):
    from transformers import ResNetConfig

    from hf_ssdd.config import TransferConfig
    from hf_ssdd.transfer import transfer

    ResNetConfig(hidden_sizes=[8, 16], depths=[1, 1], embedding_size=8).save_pretrained(tmp_path / "resnet")
    out = pretrain(PretrainConfig(distilled=tiny_distilled, arch=str(tmp_path / "resnet"), num_epochs=2,
                                  output_dir=str(tmp_path / "p"), report_to="none"))
    assert AutoModelForImageClassification.from_pretrained(out).config.model_type == "resnet"
    result = transfer(TransferConfig(target=tiny_labelled, pretrained=str(out), max_steps=2,
                                     output_dir=str(tmp_path / "t"), report_to="none"))
    assert result["num_classes"] == 2 and 0 <= result["accuracy"] <= 1


def _fit_recipe_like(seed, **overrides):
    """A tiny ConvNet fitted by `fit` on fixed random images and targets, with views; returns its weights."""
    from accelerate import Accelerator

    from hf_ssdd.modeling import learner_config, new_model

    torch.manual_seed(0)
    data = TrainingSet(torch.randn(12, 1, 8, 8), torch.randn(12, 3), Normalization((0.0,), (1.0,)))
    torch.manual_seed(seed)
    model = new_model(learner_config("convnet", 1, 8, 3, depth=1, width=4))
    values = dict(num_epochs=6, batch_size=5, learning_rate=0.05, crop_padding=1, flip=True, seed=seed,
                  logging_steps=4, report_to="none")
    cfg = PretrainConfig(**{**values, **overrides})
    history = fit_learner(model, data, cfg, Accelerator(cpu=True))
    return model.state_dict(), history


def test_the_same_seed_gives_bitwise_the_same_pretrained_weights():
    (a, history_a), (b, history_b) = _fit_recipe_like(3), _fit_recipe_like(3)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert history_a == history_b and [entry["step"] for entry in history_a] == [4, 8, 12, 16, 18]  # 6 epochs x 3 steps
    c, _ = _fit_recipe_like(4)
    assert not all(torch.equal(a[k], c[k]) for k in a), "another seed, other batches, views and initialisation"


def test_the_defaults_are_the_papers_protocol():
    """SGD, lr 0.1 held constant, momentum 0.9, weight decay 1e-3, batch 256, 1,000 epochs (KRR-ST, Sec. 4)."""
    from hf_ssdd.training_loop import sgd

    cfg = PretrainConfig()
    assert (cfg.batch_size, cfg.num_epochs) == (256, 1000)
    optimizer = sgd(torch.nn.Linear(2, 2).parameters(), cfg)
    assert isinstance(optimizer, torch.optim.SGD)
    assert {k: optimizer.defaults[k] for k in ("lr", "momentum", "weight_decay")} == {
        "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-3}
    _, history = _fit_recipe_like(0, learning_rate=0.1)
    assert {entry["learning_rate"] for entry in history} == {0.1}, "no schedule: the rate stays constant"
