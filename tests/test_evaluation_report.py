"""`evaluation.report`: the data-efficiency curve appears exactly when the benchmark has sets of several sizes."""

import pytest

from hf_ssdd.evaluation.config import BenchmarkConfig
from hf_ssdd.evaluation.report import write_report


def rows(sizes, seeds=(0, 1, 2)):
    """Linear-probe and label-free rows of every method, accuracy rising with m, for `sizes`."""
    out = []
    for seed in seeds:
        for method in ("scratch", "init", "random", "krr_st", "full"):
            for m in sizes if method not in ("scratch", "full") else [None]:
                accuracy = 0.5 + 0.01 * seed + (0.0 if m is None else 0.02 * len(str(m)))
                base = {"method": method, "m": m, "arch": "convnet", "seed": seed}
                out.append({**base, "target": "t", "protocol": "linear", "accuracy": accuracy})
                out.append({**base, "target": "label-free", "protocol": "label-free",
                            "r2": None if method in ("scratch", "random") else accuracy, "probe_r2": accuracy - 0.1})
    return out


@pytest.mark.parametrize("sizes", [[10, 100, 1000], [10]])
def test_the_curve_is_drawn_and_linked_when_there_are_several_sizes(tmp_path, sizes):
    cfg = BenchmarkConfig(distilled=[f"set-{m}" for m in sizes], targets=[{"dataset": "t"}], protocols=["linear"],
                          methods=["scratch", "init", "random", "distilled", "full"])
    write_report(rows(sizes), cfg, tmp_path)
    table = (tmp_path / "results.md").read_text()
    several = len(sizes) > 1
    assert (tmp_path / "curve.png").exists() == several
    assert ("![data-efficiency curve](curve.png)" in table) == several
    assert "| krr_st (m=10) | 55.00 ± 1.00 |" in table  # 0.5 + 0.04 + 0.01 x seed


def test_the_report_names_its_protocol_preset_and_has_no_accuracy_table_without_targets(tmp_path):
    label_free = [r for r in rows([10]) if r["protocol"] == "label-free"]
    cfg = BenchmarkConfig(distilled=["set-10"], targets=[], protocols=["linear"], preset="mkdt",
                          methods=["scratch", "init", "random", "distilled", "full"])
    write_report(label_free, cfg, tmp_path)
    table = (tmp_path / "results.md").read_text()
    assert "Protocol preset `mkdt`: MKDT's protocol (Joshi et al., ICLR 2025)" in table
    assert "Linear probe accuracy" not in table and "| krr_st (m=10) | 0.550 ± 0.010 | 0.450 ± 0.010 |" in table


def test_the_paired_table_gives_intervals_over_seeds_and_none_for_one_seed(tmp_path):
    """rows(): distilled and init have the same scores per seed (difference exactly 0, interval of no width);
    scratch is below by 0.04 (m=10's length term) at every seed."""
    cfg = BenchmarkConfig(distilled=["set-10"], targets=[{"dataset": "t"}], protocols=["linear"],
                          methods=["scratch", "init", "random", "distilled", "full"])
    for seeds in ("three", "one"):
        (tmp_path / seeds).mkdir()
    write_report(rows([10]), cfg, tmp_path / "three")
    table = (tmp_path / "three" / "results.md").read_text()
    assert "| 10 | krr_st | scratch | +4.00 [+4.00, +4.00] ▲ |" in table
    assert "| 10 | krr_st | init | +0.00 [+0.00, +0.00] |" in table
    assert "| 10 | krr_st | best of random, kmeans | +0.00 [+0.00, +0.00] (random) |" in table
    write_report(rows([10], seeds=(0,)), cfg, tmp_path / "one")
    table = (tmp_path / "one" / "results.md").read_text()
    assert "| 10 | krr_st | scratch | +4.00 (one seed: no interval) |" in table and "nan" not in table


def test_the_curve_has_a_row_of_paired_differences_when_distilled_has_baselines(tmp_path):
    from PIL import Image

    heights = {}
    for methods in (["distilled", "full"], ["scratch", "init", "random", "distilled", "full"]):
        out = tmp_path / str(len(methods))
        out.mkdir()
        cfg = BenchmarkConfig(distilled=["set-10", "set-100"], targets=[{"dataset": "t"}], protocols=["linear"],
                              methods=methods)
        write_report([r for r in rows([10, 100]) if r["method"] in methods or r["method"] == "krr_st"], cfg, out)
        heights[len(methods)] = Image.open(out / "curve.png").height
    assert heights[5] > 1.5 * heights[2]
