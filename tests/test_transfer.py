"""Transfer: fine-tuning and linear probing on a labelled target, from scratch or from a pre-trained learner."""

import json

import pytest
from huggingface_hub import ModelCard

from hf_ssdd.config import ConfigError
from hf_ssdd.parsing import parse_config
from hf_ssdd.pretrain_config import PretrainConfig
from hf_ssdd.pretraining import pretrain
from hf_ssdd.transfer import transfer
from hf_ssdd.transfer_config import TransferConfig

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def scratch(target, tmp_path, **overrides):
    values = dict(target=target, arch="convnet", max_steps=60, batch_size=32, learning_rate=0.05,
                  output_dir=str(tmp_path / "scratch"), report_to="none")
    return TransferConfig(**{**values, **overrides})


def test_finetuning_from_scratch_beats_chance_on_an_easy_task(tiny_labelled, tmp_path):
    cfg = scratch(tiny_labelled, tmp_path)
    result = transfer(cfg)
    assert result["accuracy"] >= 0.8 and result["num_classes"] == 2 and result["num_test"] == 32
    saved = json.loads((tmp_path / "scratch" / "results.json").read_text())
    assert parse_config(TransferConfig, ["--config", str(tmp_path / "scratch" / "transfer_config.yaml")]) == cfg
    assert saved["accuracy"] == result["accuracy"] and 0 <= saved["accuracy"] <= 1
    assert {"target", "protocol", "seed", "max_train_samples", "pretrained"} <= set(saved)


def test_linear_probe_of_random_features_beats_chance(tiny_labelled, tmp_path):
    result = transfer(scratch(tiny_labelled, tmp_path, protocol="linear", max_steps=100))
    assert result["accuracy"] >= 0.8 and result["protocol"] == "linear"


def test_few_labels_are_a_balanced_sample_fixed_by_the_seed(tiny_labelled, tmp_path):
    a = transfer(scratch(tiny_labelled, tmp_path, max_train_samples=8, max_steps=5, output_dir=str(tmp_path / "a")))
    b = transfer(scratch(tiny_labelled, tmp_path, max_train_samples=8, max_steps=5, output_dir=str(tmp_path / "b")))
    assert a["num_train"] == 8 and a["accuracy"] == b["accuracy"]


def test_a_pretrained_learner_transfers_and_its_card_gets_the_result(tiny_distilled, tiny_labelled, tmp_path):
    model = pretrain(PretrainConfig(distilled=tiny_distilled, num_epochs=3, output_dir=str(tmp_path / "p"),
                                    report_to="none"))
    for protocol in ("finetune", "linear"):
        result = transfer(TransferConfig(
            target=tiny_labelled, pretrained=str(model), protocol=protocol, max_steps=40, batch_size=32,
            learning_rate=0.05, output_dir=str(tmp_path / protocol), report_to="none",
        ))
        assert result["accuracy"] >= 0.75, protocol
    results = ModelCard.load(model / "README.md").data.eval_results
    assert sorted(r.metric_name for r in results) == ["Fine-tuning accuracy", "Linear-probe accuracy"]
    assert all(r.metric_type == "accuracy" and 0 <= r.metric_value <= 1 for r in results)


def test_images_are_converted_to_the_networks_channels_and_side(tiny_labelled, tmp_path):
    result = transfer(scratch(tiny_labelled, tmp_path, channels=3, resolution=16, max_steps=2))
    assert result["num_train"] == 64


def test_bad_targets_are_one_line_errors(tiny_labelled, tiny_source, tmp_path):
    with pytest.raises(ConfigError, match="no target"):
        TransferConfig()
    with pytest.raises(ConfigError, match="neither a built-in name"):
        transfer(scratch(str(tmp_path / "missing"), tmp_path, output_dir=str(tmp_path / "x")))
    with pytest.raises(ConfigError, match="label"):
        transfer(scratch(tiny_source, tmp_path, output_dir=str(tmp_path / "y")))
    with pytest.raises(ConfigError, match="label_column='nope'|nope"):
        transfer(scratch(tiny_labelled, tmp_path, label_column="nope", output_dir=str(tmp_path / "z")))
    with pytest.raises(ConfigError, match="check --pretrained"):
        transfer(scratch(tiny_labelled, tmp_path, pretrained=str(tmp_path), output_dir=str(tmp_path / "w")))


def test_accuracy_is_measured_in_eval_mode_so_a_prediction_does_not_depend_on_its_batch():
    import torch

    from hf_ssdd.data import Normalization
    from hf_ssdd.modeling import learner_config, new_model
    from hf_ssdd.transfer import accuracy

    torch.manual_seed(0)
    model = new_model(learner_config("convnet", 1, 12, 3, depth=1, width=4)).train()
    with torch.no_grad():
        model.learner.net.features[1].running_mean.fill_(0.3)  # eval-mode statistics differ from any batch's
    images, labels = torch.randint(0, 256, (12, 1, 12, 12), dtype=torch.uint8), torch.arange(12) % 3
    norm = Normalization((0.5,), (0.25,))
    whole = accuracy(model, images, labels, norm, "cpu")
    assert not model.training
    alone = sum(accuracy(model, images[i : i + 1], labels[i : i + 1], norm, "cpu") for i in range(12)) / 12
    assert whole == pytest.approx(alone)


def test_pretrain_and_transfer_run_on_two_processes(tiny_distilled, tiny_labelled, tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
              "-m", "hf_ssdd.cli"]
    for args in (["pretrain", "--distilled", tiny_distilled, "--num_epochs", "20", "--output_dir", str(tmp_path / "p")],
                 ["transfer", "--pretrained", str(tmp_path / "p"), "--target", tiny_labelled, "--max_steps", "40",
                  "--batch_size", "32", "--learning_rate", "0.05", "--output_dir", str(tmp_path / "t")]):
        proc = subprocess.run(launch + args, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "t" / "results.json").read_text())
    assert result["accuracy"] >= 0.75


def test_own_normalisation_is_the_mean_and_std_of_the_targets_training_images():
    """The paper normalises each target with its own statistics: per channel, over every pixel of the training
    images in [0, 1], the population std."""
    import torch

    from hf_ssdd.data import Normalization
    from hf_ssdd.targets import LabelledImages
    from hf_ssdd.transfer import input_normalization

    images = torch.tensor([[[[0, 255]], [[51, 51]]], [[[255, 255]], [[102, 0]]]], dtype=torch.uint8)  # (2, 2, 1, 2)
    train = LabelledImages(images, torch.tensor([0, 1]), ["a", "b"])
    source = Normalization((0.5, 0.5), (0.25, 0.25))
    red, green = [0.0, 1.0, 1.0, 1.0], [0.2, 0.2, 0.4, 0.0]
    by_hand = [(sum(v) / 4, (sum(x * x for x in v) / 4 - (sum(v) / 4) ** 2) ** 0.5) for v in (red, green)]
    own_cfg, source_cfg = TransferConfig(target="t"), TransferConfig(target="t", target_normalization="source")
    own = input_normalization(own_cfg, source, train)
    assert own.mean == pytest.approx([m for m, _ in by_hand]) and own.std == pytest.approx([s for _, s in by_hand])
    assert input_normalization(source_cfg, source, train) == source
    assert input_normalization(source_cfg, None, train) == own  # from scratch there is no source


@pytest.mark.parametrize("setting", ["own", "source"])
def test_transfer_normalises_the_target_as_target_normalization_says(setting, tiny_distilled, tiny_labelled,
                                                                     tmp_path, monkeypatch):
    import datasets
    import numpy as np

    import hf_ssdd.transfer as transfer_module
    from hf_ssdd.data import Normalization
    from hf_ssdd.targets import load_target

    bright = datasets.load_from_disk(tiny_labelled).map(lambda row: {"image": 255 - np.asarray(row["image"])})
    bright.save_to_disk(str(tmp_path / "bright"))  # the source's images inverted: other statistics
    tiny_labelled = str(tmp_path / "bright")
    model = pretrain(PretrainConfig(distilled=tiny_distilled, num_epochs=1, output_dir=str(tmp_path / "p"),
                                    report_to="none"))
    seen = []
    monkeypatch.setattr(transfer_module, "linear_probe", lambda model, train, test, normalization, cfg, device:
                        seen.append(normalization) or 0.5)
    result = transfer(TransferConfig(target=tiny_labelled, pretrained=str(model), protocol="linear",
                                     target_normalization=setting, output_dir=str(tmp_path / "t"), report_to="none"))
    _, source, (channels, side) = transfer_module.load_pretrained(str(model))
    train = load_target(tiny_labelled, split="train", resolution=side, channels=channels)
    assert seen == [source if setting == "source" else Normalization.measure(train.images)]
    assert source != Normalization.measure(train.images) and result["target_normalization"] == setting


def mkdt_train_clf(features, labels, num_classes, seed):
    """MKDT's `train_clf` as their paper's code states it: a fresh `nn.Linear`, `torch.optim.LBFGS` at its defaults,
    20 `step` calls, cross-entropy + 1e-3 * ||W||^2 on the raw features."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    head = nn.Linear(features.shape[1], num_classes)
    optimizer = torch.optim.LBFGS(head.parameters())
    for _ in range(20):
        def closure():
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(head(features), labels) + 1e-3 * head.weight.pow(2).sum()
            loss.backward()
            return loss

        optimizer.step(closure)
    return head


def test_the_mkdt_probe_settings_fit_the_head_mkdts_train_clf_fits():
    import torch

    from hf_ssdd.evaluation.presets import PRESETS
    from hf_ssdd.transfer import logistic_regression

    generator = torch.Generator().manual_seed(0)
    centres = 3 * torch.randn(4, 16, generator=generator)
    labels = torch.arange(200) % 4
    features = centres[labels] + 2 * torch.randn(200, 16, generator=generator) + 5  # raw: not centred
    test = centres[labels] + 2 * torch.randn(200, 16, generator=generator) + 5
    probe = PRESETS["mkdt"].linear
    ours = logistic_regression(features, labels, test, 4, seed=7, max_steps=probe["max_steps"],
                               weight_decay=probe["weight_decay"], rounds=probe["probe_rounds"],
                               line_search=probe["probe_line_search"], standardize=probe["standardize_features"])
    theirs = mkdt_train_clf(features, labels, 4, seed=7)(test).argmax(1)
    assert torch.equal(ours, theirs)
    standardised = logistic_regression(features, labels, test, 4, seed=7, max_steps=100, weight_decay=1e-3)
    assert (standardised == labels).float().mean() > 0.6 and (ours == labels).float().mean() > 0.6


def test_a_fraction_of_the_labels_may_be_drawn_uniformly(tiny_labelled, tmp_path):
    runs = [transfer(scratch(tiny_labelled, tmp_path, train_fraction=0.25, label_sampling=sampling, max_steps=5,
                             protocol="linear", output_dir=str(tmp_path / f"{sampling}-{again}")))
            for sampling in ("balanced", "uniform") for again in (0, 1)]
    assert [r["num_train"] for r in runs] == [16] * 4  # int(64 x 0.25)
    assert runs[0]["accuracy"] == runs[1]["accuracy"] and runs[2]["accuracy"] == runs[3]["accuracy"]
    assert runs[2]["label_sampling"] == "uniform" and runs[2]["train_fraction"] == 0.25


@pytest.mark.parametrize("values, message", [
    ({"train_fraction": 0.0}, "train_fraction=0.0 must be in"),
    ({"train_fraction": 1.5}, "train_fraction=1.5 must be in"),
    ({"train_fraction": 0.1, "max_train_samples": 10}, "not both"),
    ({"label_sampling": "stratified"}, "label_sampling='stratified' is not one of"),
    ({"probe_rounds": 0}, "probe_rounds=0 must be positive"),
])
def test_bad_few_label_and_probe_settings_are_one_line_errors(values, message):
    with pytest.raises(ConfigError, match=message):
        TransferConfig(target="t", **values)
