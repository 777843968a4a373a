"""Pre-training on a distilled set: the learner regresses the targets, and is saved as a Hub model with a card."""

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModel, AutoModelForImageClassification

from hf_ssdd.config import ConfigError
from hf_ssdd.data import Normalization
from hf_ssdd.distilled_set import DistilledSet
from hf_ssdd.pretrain_config import PretrainConfig
from hf_ssdd.pretraining import fit_learner, pretrain
from hf_ssdd.training_sets import TrainingSet

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def test_pretrain_fits_the_targets_and_saves_an_auto_model(tiny_distilled, tmp_path):
    cfg = PretrainConfig(distilled=tiny_distilled, num_epochs=60, learning_rate=0.05, output_dir=str(tmp_path / "p"),
                         report_to="none")
    out = pretrain(cfg)
    distilled = DistilledSet.load(tiny_distilled)
    model = AutoModelForImageClassification.from_pretrained(out).eval()
    assert model.config.arch == "convnet" and model.config.arch_options == {"depth": 2, "width": 4, "norm": "batch",
                                                                            "pooling": "avg", "double_width": True}
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


def test_a_stopped_run_resumes_from_latest_to_bitwise_the_uninterrupted_learner(tiny_distilled, tmp_path,
                                                                                 interrupt_at):
    import hf_ssdd.pretraining

    def cfg(out, **overrides):
        settings = dict(distilled=tiny_distilled, num_epochs=12, save_steps=4, logging_steps=5, report_to="none")
        return PretrainConfig(output_dir=str(tmp_path / out), **{**settings, **overrides})

    full = pretrain(cfg("full"))
    interrupt_at(hf_ssdd.pretraining, "batch_indices", 6)
    with pytest.raises(SystemExit, match="stopped by signal at step 6; resume with --resume_from_checkpoint latest"):
        pretrain(cfg("stopped"))
    stopped = tmp_path / "stopped"
    assert sorted(p.name for p in stopped.iterdir()) == ["checkpoint-4", "checkpoint-6"]
    with pytest.raises(ConfigError, match="incompatible config.*num_epochs"):
        pretrain(cfg("stopped", num_epochs=13, resume_from_checkpoint="latest"))

    assert pretrain(cfg("stopped", resume_from_checkpoint="latest")) == stopped
    assert (stopped / "model.safetensors").read_bytes() == (full / "model.safetensors").read_bytes()
    assert (stopped / "train_log.json").read_text() == (full / "train_log.json").read_text()
    AutoModelForImageClassification.from_pretrained(stopped)


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
    with pytest.raises(ConfigError, match="no set: pass --distilled"):
        pretrain(PretrainConfig(output_dir=str(tmp_path / "a")))
    with pytest.raises(ConfigError, match="neither a float `target` column .* nor a class label column"):
        pretrain(PretrainConfig(distilled=tiny_source, output_dir=str(tmp_path / "b")))
    assert not (tmp_path / "b").exists(), "nothing is written for a set that cannot be read"


def test_a_transformers_architecture_is_pretrained_and_transferred_alike(tiny_distilled, tiny_labelled, tmp_path):
    from transformers import ResNetConfig

    from hf_ssdd.transfer import transfer
    from hf_ssdd.transfer_config import TransferConfig

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


@pytest.mark.parametrize("uses_labels, recipe", [
    (False, {"learning_rate": 0.1, "weight_decay": 1e-3, "lr_drop": 1.0, "dsa": False}),  # KRR-ST, Sec. 4
    (True, {"learning_rate": 0.01, "weight_decay": 5e-4, "lr_drop": 0.5, "dsa": True}),  # supervised sets, App. A
])
def test_the_defaults_are_the_papers_protocol_for_each_objective(uses_labels, recipe):
    """SGD, momentum 0.9, batch 256, 1,000 epochs; targets: lr 0.1 held constant, weight decay 1e-3; labels: lr 0.01
    x0.1 at half, weight decay 5e-4, DSA augmentation."""
    from hf_ssdd.training_loop import sgd

    cfg = PretrainConfig().for_objective(uses_labels)
    assert (cfg.batch_size, cfg.num_epochs, cfg.momentum) == (256, 1000, 0.9)
    assert {key: getattr(cfg, key) for key in recipe} == recipe
    optimizer = sgd(torch.nn.Linear(2, 2).parameters(), cfg)
    assert {k: optimizer.defaults[k] for k in ("lr", "momentum", "weight_decay")} == {
        "lr": recipe["learning_rate"], "momentum": 0.9, "weight_decay": recipe["weight_decay"]}


def test_a_value_given_wins_over_the_objectives_recipe():
    cfg = PretrainConfig(learning_rate=0.3, dsa=False).for_objective(uses_labels=True)
    assert (cfg.learning_rate, cfg.dsa, cfg.weight_decay, cfg.lr_drop) == (0.3, False, 5e-4, 0.5)


def test_targets_keep_a_constant_rate_and_the_old_recipe_bit_for_bit():
    """The recipe of targets left to its defaults trains exactly as it did when its values were the fields' own
    defaults (lr 0.1, weight decay 1e-3, no schedule, no DSA)."""
    default, history = _fit_recipe_like(3, learning_rate=None)
    pinned, _ = _fit_recipe_like(3, learning_rate=0.1, weight_decay=1e-3, lr_drop=1.0, dsa=False)
    assert all(torch.equal(default[k], pinned[k]) for k in default)
    assert {entry["learning_rate"] for entry in history} == {0.1}, "no schedule: the rate stays constant"


def test_labels_train_with_the_rate_cut_tenfold_at_half_and_with_dsa():
    from accelerate import Accelerator

    from hf_ssdd.modeling import learner_config, new_model

    torch.manual_seed(0)
    data = TrainingSet(torch.randn(12, 1, 8, 8), torch.arange(12) % 3, Normalization((0.0,), (1.0,)))
    runs = []
    for dsa in (True, False):
        torch.manual_seed(0)
        model = new_model(learner_config("convnet", 1, 8, 3, depth=1, width=4))
        history = fit_learner(model, data, PretrainConfig(num_epochs=4, batch_size=6, logging_steps=1, dsa=dsa),
                              Accelerator(cpu=True))
        runs.append((model.state_dict(), history))
    (with_dsa, history), (without, _) = runs
    rates = [entry["learning_rate"] for entry in history]  # 8 steps; logged after each step's scheduler update
    assert rates == pytest.approx([0.01] * 3 + [0.001] * 5)
    assert not all(torch.equal(with_dsa[k], without[k]) for k in with_dsa), "DSA changes what the learner sees"


def test_max_steps_caps_the_epochs_of_a_large_set_and_leaves_a_small_one_alone():
    """6 epochs of 12 images in batches of 5 are 18 steps; a cap of 10 stops there, a cap of 50 changes nothing."""
    _, capped = _fit_recipe_like(3, max_steps=10)
    assert capped[-1]["step"] == 10
    full, history = _fit_recipe_like(3)
    loose, loose_history = _fit_recipe_like(3, max_steps=50)
    assert loose_history == history and all(torch.equal(full[k], loose[k]) for k in full)
