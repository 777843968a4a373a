"""benchmarks/checkpoint_sets.py: every checkpoint of a distillation becomes a set the benchmark can read, and its
drift from the start is measured without labels."""

import dataclasses
from pathlib import Path

import pytest
import torch

from hf_ssdd.distilled_set import DistilledSet
from hf_ssdd.evaluation.methods import Source
from hf_ssdd.subsets import initial_indices

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def checkpoint_sets(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import checkpoint_sets

    return checkpoint_sets


@pytest.fixture(scope="module")
def distilled_with_checkpoints(distill_tiny, tmp_path_factory):
    return distill_tiny(tmp_path_factory.mktemp("steps") / "m6", max_steps=4, learning_rate=1e-1, save_steps=2,
                        save_total_limit=None)


def test_each_checkpoint_is_written_as_a_set_and_the_last_one_is_the_finished_set(
    checkpoint_sets, distilled_with_checkpoints, tmp_path
):
    rows = checkpoint_sets.checkpoint_sets(distilled_with_checkpoints, str(tmp_path))
    assert [row["step"] for row in rows] == [2, 4, "4 (finished)"]
    finished = DistilledSet.load(distilled_with_checkpoints)
    step2, step4 = DistilledSet.load(tmp_path / "step-2"), DistilledSet.load(tmp_path / "step-4")
    assert step4.fingerprint() == finished.fingerprint() and step2.fingerprint() != finished.fingerprint()
    assert step2.metadata["steps"] == 2 and step2.metadata["source"] == finished.metadata["source"]  # its local id too
    assert rows[1] == {**rows[2], "step": 4}
    assert rows[0]["image RMS change"] > 0 and rows[0]["R²(targets, teacher)"] < 1


def test_a_set_that_has_not_moved_has_no_drift_and_learned_targets_show_as_disagreement(
    checkpoint_sets, distilled_with_checkpoints
):
    finished = DistilledSet.load(distilled_with_checkpoints)
    source = Source(finished, None, "cpu")
    seed = finished.metadata["hyperparameters"]["seed"]
    start = source.normalization.normalize(source.images[initial_indices(len(source.images), 6, seed)])
    with torch.no_grad():
        targets = source.teacher.on_normalized(start, source.normalization)
    unmoved = dataclasses.replace(finished, pixel_values=start, targets=targets)
    drift = checkpoint_sets.drift(unmoved, start, source)
    assert drift["image RMS change"] == 0 and drift["R²(targets, teacher)"] == pytest.approx(1, abs=1e-6)
    shifted = checkpoint_sets.drift(dataclasses.replace(unmoved, targets=targets + targets.std(0)), start, source)
    assert shifted["R²(targets, teacher)"] < 0.1  # a shift of one standard deviation per dimension: R² = 1 - 1 = 0
