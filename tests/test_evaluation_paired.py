"""`evaluation.paired`: distilled against its baselines, seed by seed, with a Student-t 95% interval."""

import math

import pytest

from hf_ssdd.evaluation.paired import comparisons, half_width, paired_difference


def rows(method, m, accuracies, target="t", protocol="linear"):
    return [{"method": method, "m": m, "arch": "convnet", "seed": seed, "target": target, "protocol": protocol,
             "accuracy": value} for seed, value in enumerate(accuracies)]


def test_the_interval_is_student_t_over_the_seeds_differences():
    """Differences 1, 2, 3: mean 2, sample std 1, t(0.975, 2) = 4.3027 -> 2 ± 4.3027 / sqrt(3)."""
    d = paired_difference({0: 11.0, 1: 12.0, 2: 13.0}, {0: 10.0, 1: 10.0, 2: 10.0})
    half = 4.302652729911275 / math.sqrt(3)
    assert (d.mean, d.seeds) == (2.0, 3)
    assert d.low == pytest.approx(2 - half) and d.high == pytest.approx(2 + half)
    assert not d.above_zero and not d.below_zero  # 2 - 2.48 < 0: three seeds this noisy cannot show it
    below = paired_difference({0: 10.0, 1: 11.0, 2: 12.0}, {0: 11.0, 1: 12.0, 2: 13.5})  # -1, -1, -1.5
    assert below.below_zero and not below.above_zero


def test_pairing_removes_the_noise_the_seeds_share():
    """Both methods swing by 5 points from seed to seed, distilled always 1 above: unpaired, the intervals overlap;
    paired, the difference is exactly 1 with no width."""
    base = {0: 70.0, 1: 75.0, 2: 80.0}
    d = paired_difference({s: v + 1 for s, v in base.items()}, base)
    assert d.mean == pytest.approx(1) and d.low == pytest.approx(1) and d.above_zero
    assert half_width(5.0, 3) > 1  # what an unpaired reading would see


def test_only_shared_seeds_pair_and_one_seed_has_no_interval():
    d = paired_difference({0: 2.0, 1: 3.0, 5: 9.0}, {0: 1.0, 1: 1.0})
    assert d.seeds == 2 and d.mean == pytest.approx(1.5)
    one = paired_difference({0: 2.0}, {0: 1.0})
    assert one.mean == 1.0 and math.isnan(one.low) and not one.above_zero
    assert paired_difference({0: 1.0}, {1: 1.0}) is None


def test_distilled_is_compared_with_init_random_mse_scratch_and_the_better_real_subset():
    results = (rows("krr_st", 10, [0.80, 0.82, 0.84]) + rows("init", 10, [0.79, 0.80, 0.81])
               + rows("random", 10, [0.70, 0.71, 0.72]) + rows("kmeans", 10, [0.75, 0.74, 0.73])
               + rows("random_mse", 10, [0.78, 0.79, 0.80]) + rows("scratch", None, [0.60, 0.60, 0.60])
               + rows("krr_st", 100, [0.9, 0.9, 0.9]) + rows("init", 100, [0.9, 0.9, 0.9]))
    table = comparisons(results)[("linear", "t")]
    assert set(table) == {(10, "convnet", "krr_st", "init"), (10, "convnet", "krr_st", "random_mse"),
                          (10, "convnet", "krr_st", "scratch"), (10, "convnet", "krr_st", "best of random, kmeans"),
                          (100, "convnet", "krr_st", "init"), (100, "convnet", "krr_st", "scratch")}
    best = table[(10, "convnet", "krr_st", "best of random, kmeans")]
    assert best.against == "kmeans" and best.mean == pytest.approx(0.08)
    assert table[(10, "convnet", "krr_st", "init")].mean == pytest.approx(0.02)
    assert table[(100, "convnet", "krr_st", "scratch")].mean == pytest.approx(0.3)


def test_each_method_is_paired_with_the_methods_before_it_and_with_its_own_start():
    """MKDT's rows meet KRR-ST's of the same m seed by seed (once: `mkdt − krr_st`) and the high-loss start."""
    results = (rows("krr_st", 10, [0.80, 0.82, 0.84]) + rows("mkdt", 10, [0.81, 0.85, 0.84])
               + rows("init_high_loss", 10, [0.70, 0.70, 0.71]) + rows("mkdt", 100, [0.9, 0.9, 0.9]))
    table = comparisons(results)[("linear", "t")]
    assert set(table) == {(10, "convnet", "mkdt", "krr_st"), (10, "convnet", "mkdt", "init_high_loss"),
                          (10, "convnet", "krr_st", "init_high_loss")}
    assert table[(10, "convnet", "mkdt", "krr_st")].mean == pytest.approx((0.01 + 0.03 + 0.0) / 3)


def test_label_free_scores_are_compared_per_column():
    label_free = [{"method": method, "m": 10, "arch": "convnet", "seed": seed, "target": "label-free",
                   "protocol": "label-free", "r2": r2, "probe_r2": 0.5}
                  for method, base in (("krr_st", 0.8), ("init", 0.7))
                  for seed, r2 in enumerate([base, base + 0.01])]
    out = comparisons(label_free)
    assert out[("label-free", "head R²")][(10, "convnet", "krr_st", "init")].mean == pytest.approx(0.1)
    assert out[("label-free", "ridge-probe R²")][(10, "convnet", "krr_st", "init")].mean == pytest.approx(0.0)
