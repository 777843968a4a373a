"""The memory planner: what it counts, how it grows with m, and a run that cannot fit failing before step 1."""

import pytest
import torch

from hf_ssdd.cli import main
from hf_ssdd.config import ConfigError
from hf_ssdd.learners import ConvNet
from hf_ssdd.memory import GB, activation_bytes
from hf_ssdd.methods.krr_st.config import KRRSTConfig
from hf_ssdd.methods.krr_st.distiller import KRRSTDistiller
from hf_ssdd.methods.krr_st.memory import plan_memory
from hf_ssdd.teachers import Teacher


def test_activation_bytes_count_every_layer_output_when_autograd_keeps_them():
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten())
    per_image = 4 * 8 * 8 * 4  # one float32 (4, 8, 8) map
    assert activation_bytes(net, torch.zeros(1, 1, 8, 8), saved=True) == 3 * per_image
    assert activation_bytes(net, torch.zeros(1, 1, 8, 8), saved=False) == 2 * per_image


def plan(tiny_teacher, **overrides):
    cfg = KRRSTConfig(**{"teacher": tiny_teacher, "batch_size": 64, "learner_width": 8, "feature_chunk_size": 64,
                         "pool_chunk_size": 64, **overrides})
    teacher = Teacher.from_pretrained(tiny_teacher)
    learner = ConvNet(1, 32, cfg.learner_depth, cfg.learner_width, out_features=teacher.dim)
    return plan_memory(cfg, learner, teacher, (1, 32, 32), 1000, torch.device("cpu"), budget=8 * GB)


def test_with_chunks_only_the_kernel_grows_faster_than_m(tiny_teacher):
    """Beyond one chunk, activations stay flat in m; the synthetic set grows linearly, the m x m system as m²."""
    small, large = plan(tiny_teacher, num_synthetic=1000), plan(tiny_teacher, num_synthetic=4000)
    assert large.parts["learner activations"] == small.parts["learner activations"]
    assert large.parts["synthetic set + Adam"] == 4 * small.parts["synthetic set + Adam"]
    kernel = [k for k in large.parts if k.startswith("KRR system")][0]
    assert "dual, 4000x4000" in kernel or "primal" in kernel
    unchunked = plan(tiny_teacher, num_synthetic=4000, pool_chunk_size=None)
    assert unchunked.parts["learner activations"] > 10 * large.parts["learner activations"]


def test_a_run_that_cannot_fit_fails_before_step_one_with_the_estimate_and_the_fix(tiny_source, tiny_teacher, tmp_path):
    base = dict(dataset=tiny_source, teacher=tiny_teacher, num_synthetic=24, max_steps=3, batch_size=8, pool_size=2,
                pool_steps=4, learner_depth=2, learner_width=64, report_to="none")
    fits = KRRSTDistiller(KRRSTConfig(**base, output_dir=str(tmp_path / "ok")))
    full = plan_memory(fits.cfg, fits.make_learner(), fits.teacher, (1, 12, 12), 48, torch.device("cpu"))
    activations = full.parts["learner activations"]
    budget_gb = (full.total - activations / 2) / GB  # room for a quarter of the activations, not all of them
    with pytest.raises(ConfigError, match=r"(?s)needs about .* GB.*learner activations.*--feature_chunk_size \d+ "
                                          r"--pool_chunk_size \d+") as info:
        KRRSTDistiller(KRRSTConfig(**base, output_dir=str(tmp_path / "tight"), max_memory_gb=budget_gb))
    assert not (tmp_path / "tight").exists() or not any((tmp_path / "tight").iterdir()), "nothing ran"
    assert "total (estimate)" in str(info.value)
    with pytest.raises(ConfigError, match="fewer synthetic images"):
        KRRSTDistiller(KRRSTConfig(**base, output_dir=str(tmp_path / "none"), max_memory_gb=0.1))


def test_plan_command_prints_the_estimate(tiny_source, tiny_teacher, capsys):
    main(["plan", "--dataset", tiny_source, "--teacher", tiny_teacher, "--num_synthetic", "10", "--batch_size", "8"])
    out = capsys.readouterr().out
    assert "hf-ssdd plan: m=10, 48 real images (1, 12, 12)" in out and "total (estimate)" in out and "fits:" in out
