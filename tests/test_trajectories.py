"""Expert trajectories: what is recorded, bitwise resumption, the same files on 1 and 2 processes, and the high-loss
images they pick."""

import json
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_TRAJECTORIES

from hf_ssdd.config import ConfigError
from hf_ssdd.trajectories import (
    Trajectories, TrajectoriesConfig, expert_file, expert_losses, high_loss_indices, make_expert, save_expert,
    source_targets, train_trajectories,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def tiny(source, teacher, output_dir, /, **overrides) -> TrajectoriesConfig:
    return TrajectoriesConfig(dataset=source, teacher=teacher, output_dir=str(output_dir),
                              **{**TINY_TRAJECTORIES, **overrides})


def expert_bytes(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(Path(folder).glob("expert-*.safetensors"))}


def test_every_expert_records_its_weights_at_the_start_and_after_every_epoch(tiny_trajectories, tiny_source,
                                                                             tiny_teacher):
    experts = Trajectories.load(tiny_trajectories)
    assert (experts.num_experts, experts.num_epochs) == (3, 4)
    names = [p.name for p in Path(tiny_trajectories).iterdir()]
    assert sorted(names) == ["README.md", "config.json", *(expert_file(k) for k in range(3)),
                             "trajectories_config.yaml"], "no checkpoint is left behind"
    model = experts.learner()
    cfg = tiny(tiny_source, tiny_teacher, "unused")
    for k in range(3):
        start = experts.parameters(k, 0)
        want = dict(make_expert(cfg, k, 1, 12, experts.meta["dim"]).named_parameters())
        assert start.keys() == want.keys() and all(torch.equal(start[n], want[n]) for n in want)
        assert {n: p.shape for n, p in start.items()} == {n: p.shape for n, p in model.named_parameters()}
        assert not torch.equal(experts.parameters(k, 4)["head.weight"], start["head.weight"])
    assert not torch.equal(experts.parameters(0, 0)["head.weight"], experts.parameters(1, 0)["head.weight"])
    assert len(experts.meta["final_losses"]) == 3 and all(0 < loss < np.inf for loss in experts.meta["final_losses"])
    card = (Path(tiny_trajectories) / "README.md").read_text()
    assert "library_name: hf-ssdd" in card and "3 students" in card and "Trajectories.load" in card


def test_the_experts_learn_the_teachers_representations(tiny_trajectories, tiny_source, tiny_teacher):
    from hf_ssdd.image_store import load_images

    experts = Trajectories.load(tiny_trajectories)
    images = load_images(tiny(tiny_source, tiny_teacher, "unused")).images
    targets = source_targets(experts_teacher(tiny_teacher), images, experts.normalization)
    first, last = (expert_losses(experts, images, experts.normalization, targets, epoch).mean(1) for epoch in (0, 4))
    assert (last < 0.5 * first).all(), (first, last)


def experts_teacher(path):
    from hf_ssdd.teachers import Teacher

    return Teacher.from_pretrained(path)


@contextmanager
def stopped_after(checks: int):
    """`stop_requests` that reports a stop at its `checks`-th look (as a SIGTERM between two batches)."""

    class Flag(list):
        looks = 0

        def __bool__(self):
            Flag.looks += 1
            return Flag.looks >= checks

    yield Flag()


def test_a_stopped_run_resumes_to_bitwise_the_uninterrupted_files(tiny_trajectories, tiny_source, tiny_teacher,
                                                                  tmp_path, monkeypatch):
    import hf_ssdd.checkpoint

    monkeypatch.setattr(hf_ssdd.checkpoint, "stop_requests", lambda: stopped_after(17))  # 12 batches an expert
    with pytest.raises(SystemExit, match="stopped by signal in expert 1, epoch 2"):
        train_trajectories(tiny(tiny_source, tiny_teacher, tmp_path / "out"))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "checkpoint-expert-001", "expert-000.safetensors", "trajectories_config.yaml"]
    monkeypatch.undo()
    with pytest.raises(ConfigError, match="not empty"):
        train_trajectories(tiny(tiny_source, tiny_teacher, tmp_path / "out"))
    with pytest.raises(ConfigError, match="trajectories folder .* comes from an incompatible config "
                                          r"\(learning_rate=0.1 there vs 0.2 now\)"):
        train_trajectories(tiny(tiny_source, tiny_teacher, tmp_path / "out", learning_rate=0.2,
                                resume_from_checkpoint="latest"))
    train_trajectories(tiny(tiny_source, tiny_teacher, tmp_path / "out", resume_from_checkpoint="latest"))
    assert expert_bytes(tmp_path / "out") == expert_bytes(tiny_trajectories)


TWO_PROCESSES = """
import json, sys
from hf_ssdd.trajectories import train_trajectories
from hf_ssdd.trajectories_config import TrajectoriesConfig
train_trajectories(TrajectoriesConfig(**json.loads(sys.argv[1])))
"""


def test_two_processes_write_the_same_files_as_one(tiny_source, tiny_teacher, tmp_path):
    """Each expert is a function of `(seed, k)`: the process that trains it does not matter. (The number of CPU
    threads does, as for any float reduction, so both runs use one thread per process.)"""
    (tmp_path / "run.py").write_text(TWO_PROCESSES)
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    for processes in (1, 2):
        launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
                    "--master_port", "29541"]
        cfg = tiny(tiny_source, tiny_teacher, tmp_path / str(processes))
        proc = subprocess.run([*launcher, str(tmp_path / "run.py"), json.dumps(cfg.__dict__)], env=env,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(expert_bytes(tmp_path / "2")) == 3 and expert_bytes(tmp_path / "2") == expert_bytes(tmp_path / "1")
    one, two = (json.loads((tmp_path / f / "config.json").read_text()) for f in ("1", "2"))
    assert one["final_losses"] == two["final_losses"]


def test_high_loss_picks_the_images_the_experts_miss_most_after_one_epoch_on_average(tiny_trajectories, tiny_source,
                                                                                    tiny_teacher, tmp_path):
    """Built to have known losers: two experts whose epoch-1 network outputs only its head's bias, b and c, so that
    their mean loss on image i is const - y_i . (b + c) / d (the teacher's targets are layer-normed: |y_i| is about
    the same for every image), and the hardest images are those whose targets point most away from b + c; epochs 0
    and 2 are random networks, and either expert alone ranks by y_i . b or y_i . c instead."""
    from hf_ssdd.image_store import load_images

    folder = tmp_path / "built"
    shutil.copytree(tiny_trajectories, folder)
    meta = json.loads((folder / "config.json").read_text())
    meta["num_experts"], meta["num_epochs"] = 2, 2
    (folder / "config.json").write_text(json.dumps(meta))
    for p in folder.glob("expert-*"):
        p.unlink()
    experts = Trajectories.load(tiny_trajectories)
    teacher = experts_teacher(tiny_teacher)
    images = load_images(tiny(tiny_source, tiny_teacher, "unused")).images
    targets = torch.from_numpy(np.asarray(source_targets(teacher, images, experts.normalization)))  # (N, d)
    biases = torch.randn(2, targets.shape[1], generator=torch.Generator().manual_seed(0))  # b, c
    for k, bias in enumerate(biases):
        random = [experts.parameters(k, e) for e in (0, 4)]
        flat = {n: torch.zeros_like(p) for n, p in random[0].items()}
        flat["head.bias"] = bias
        save_expert(folder / expert_file(k), [random[0], flat, random[1]], [0.0, 0.0])

    picked = high_loss_indices(Trajectories.load(str(folder)), images, teacher, m=5)
    want = (targets @ biases.sum(0)).argsort()[:5]
    assert picked.tolist() == want.tolist()
    for bias in biases:
        assert (targets @ bias).argsort()[:5].tolist() != want.tolist(), "the test would not see a missing average"


def test_bad_inputs_are_one_line_errors_before_any_work(tiny_trajectories, tiny_source, tiny_teacher, tmp_path):
    with pytest.raises(ConfigError, match="no teacher"):
        train_trajectories(tiny(tiny_source, None, tmp_path / "out"))
    assert not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match="num_experts=0 must be positive"):
        tiny(tiny_source, tiny_teacher, tmp_path / "out", num_experts=0)
    with pytest.raises(ConfigError, match="has no config.json"):
        Trajectories.load(str(tmp_path))
    partial = tmp_path / "partial"
    shutil.copytree(tiny_trajectories, partial)
    (partial / expert_file(2)).unlink()
    with pytest.raises(ConfigError, match="lacks 1 of its 3 experts"):
        Trajectories.load(str(partial))
    with pytest.raises(ConfigError, match="another source or teacher.*num_images 48 there vs 40 here"):
        Trajectories.load(tiny_trajectories).check_source(40, 1, 12, experts_teacher(tiny_teacher))


def test_push_to_hub_uploads_the_folder_as_a_model_repo(tiny_source, tiny_teacher, tmp_path):
    from unittest import mock

    from hf_ssdd.hub import IGNORE_PATTERNS

    with mock.patch("hf_ssdd.hub.push_to_hub", return_value="https://hf.co/user/experts") as push:
        train_trajectories(tiny(tiny_source, tiny_teacher, tmp_path / "out", num_experts=1, num_epochs=1,
                                push_to_hub="user/experts", private=True))
    push.assert_called_once_with(tmp_path / "out", "user/experts", repo_type="model", private=True)
    assert "checkpoint-*" in IGNORE_PATTERNS and "trajectories_config.yaml" in IGNORE_PATTERNS
