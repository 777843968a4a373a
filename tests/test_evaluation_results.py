"""`evaluation.results`: the summary of results.jsonl rows is the mean and sample std over seeds."""

import pytest

from hf_ssdd.evaluation.results import summarise


def test_summaries_are_mean_and_sample_std():
    rows = [{"method": "a", "m": 1, "arch": "convnet", "seed": seed, "target": "t", "protocol": "linear",
             "accuracy": v} for seed, v in enumerate((0.5, 0.7, 0.9))]
    mean, std, n = summarise(rows)[("linear", "t")][("a", 1, "convnet")]
    assert mean == pytest.approx(0.7) and std == pytest.approx(0.2) and n == 3
