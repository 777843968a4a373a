"""MKDT's distiller: where the set starts, what it saves (the learned step size), bitwise resumption, and runs that
go wrong before step 1 or at a non-finite loss. Process-count and checkpoint invariance: ../test_distiller.py."""

import numpy as np
import pytest
import torch
import yaml

from hf_ssdd.checkpoint import list_checkpoints
from hf_ssdd.config import ConfigError
from hf_ssdd.distilled_set import DistilledSet
from hf_ssdd.methods.distiller import NonFiniteLossError
from hf_ssdd.methods.mkdt.config import MKDTConfig
from hf_ssdd.methods.mkdt.distiller import MKDTDistiller
from hf_ssdd.trajectories import high_loss_indices, source_targets

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture
def tiny(tiny_source, tiny_teacher, tiny_trajectories, tmp_path):
    def config(name="out", **overrides) -> MKDTConfig:
        values = dict(dataset=tiny_source, teacher=tiny_teacher, trajectories=tiny_trajectories,
                      output_dir=str(tmp_path / name), num_synthetic=6, max_steps=6, save_steps=3,
                      save_total_limit=None, syn_steps=3, syn_batch_size=4, image_learning_rate=10.0,
                      step_size_learning_rate=1e-2, report_to="none")
        return MKDTConfig(**{**values, **overrides})

    return config


def test_the_set_starts_from_the_experts_high_loss_images_and_their_teacher_targets(tiny):
    d = MKDTDistiller(tiny())
    want = high_loss_indices(d.trajectories, d.images, d.teacher, 6)
    assert d.init_indices == want.tolist()
    assert torch.equal(d.x_s.detach(), d.trajectories.normalization.normalize(d.images[want]))
    targets = np.asarray(source_targets(d.teacher, d.images, d.normalization))
    assert torch.equal(d.y_s.detach(), torch.from_numpy(targets[want.numpy()]))
    assert d.step_size.item() == pytest.approx(0.1)


def test_a_run_moves_images_targets_and_step_size_and_saves_the_step_size_with_the_set(tiny, tmp_path):
    d = MKDTDistiller(tiny())
    x0, y0 = d.x_s.detach().clone(), d.y_s.detach().clone()
    result = d.train()
    assert not torch.equal(result.pixel_values, x0) and not torch.equal(result.targets, y0)
    assert result.metadata["step_size"] != pytest.approx(0.1, abs=1e-9)
    loaded = DistilledSet.load(tmp_path / "out")
    assert torch.equal(loaded.pixel_values, result.pixel_values) and torch.equal(loaded.targets, result.targets)
    assert loaded.metadata["method"] == "mkdt" and loaded.metadata["step_size"] == result.metadata["step_size"]
    assert loaded.metadata["learner"]["norm"] == "instance"
    card = (tmp_path / "out" / "README.md").read_text()
    assert "(MKDT)" in card and "arXiv:2410.02116" in card and f"{result.metadata['step_size']:.6g}" in card


def test_pretrain_learns_at_an_mkdt_sets_step_size_unless_told_otherwise(tiny, tmp_path):
    from hf_ssdd.pretrain_config import PretrainConfig
    from hf_ssdd.pretraining import pretrain

    step_size = MKDTDistiller(tiny(max_steps=2)).train().metadata["step_size"]
    for name, given in (("own", None), ("given", 0.05)):
        pretrain(PretrainConfig(distilled=str(tmp_path / "out"), num_epochs=2, learning_rate=given,
                                output_dir=str(tmp_path / name), report_to="none"))
        saved = yaml.safe_load((tmp_path / name / "pretrain_config.yaml").read_text())
        assert saved["learning_rate"] == (given or step_size)


def test_resuming_gives_bitwise_the_uninterrupted_result(tiny, tmp_path):
    full = MKDTDistiller(tiny("full")).train()
    resumed = MKDTDistiller(tiny("resumed", resume_from_checkpoint=str(tmp_path / "full" / "checkpoint-3")))
    assert resumed.step == 3
    result = resumed.train()
    assert torch.equal(result.pixel_values, full.pixel_values) and torch.equal(result.targets, full.targets)
    assert result.metadata["step_size"] == full.metadata["step_size"]


def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tiny, tmp_path, monkeypatch):
    import hf_ssdd.methods.mkdt.distiller as distiller

    d = MKDTDistiller(tiny())
    real = distiller.matching_loss
    monkeypatch.setattr(distiller, "matching_loss", lambda *a: real(*a) * (float("nan") if d.step == 4 else 1.0))
    with pytest.raises(NonFiniteLossError, match="step 4.*checkpoint-3.*--image_learning_rate"):
        d.train()
    assert [p.name for p in list_checkpoints(tmp_path / "out")] == ["checkpoint-3"]


def test_a_run_that_cannot_fit_is_refused_before_step_1_with_the_estimate(tiny, tmp_path):
    with pytest.raises(ConfigError, match=r"(?s)needs about .* GB.*unrolled graph \(3 steps\).*lower --syn_steps"):
        MKDTDistiller(tiny(max_memory_gb=0.01))
    assert not (tmp_path / "out").exists()


def test_plan_prints_the_estimate(tiny, capsys):
    from hf_ssdd.distill import plan

    assert plan(tiny()).fits
    out = capsys.readouterr().out
    assert "hf-ssdd plan: mkdt" in out and "unrolled graph (3 steps)" in out


def test_bad_inputs_fail_before_any_work(tiny, tiny_source, tiny_teacher, tmp_path):
    cases = [
        (dict(max_start_epoch=4, expert_epochs=2), "reach epoch 5; the experts have 4"),
        (dict(mean=[0.5], std=[0.5]), "differ from the experts' normalisation"),
        (dict(trajectories=str(tmp_path / "none")), "neither a local folder nor a reachable Hub"),
        (dict(max_samples=40), "another source or teacher.*num_images 48 there vs 40 here"),
    ]
    for overrides, message in cases:
        with pytest.raises(ConfigError, match=message):
            MKDTDistiller(tiny(**overrides))
    with pytest.raises(ConfigError, match="pass --trajectories"):
        MKDTConfig(dataset=tiny_source, teacher=tiny_teacher, init="random")
    assert not (tmp_path / "out").exists()
