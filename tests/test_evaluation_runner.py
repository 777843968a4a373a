"""`evaluation.runner`, and what it drives on a finished benchmark (`resume`, `report`, the `benchmark` and `card`
commands): every method runs, results follow the schema, an interrupted benchmark resumes, reports render."""

import json
from pathlib import Path

import pytest
import yaml

from hf_ssdd.config import ConfigError
from hf_ssdd.distilled_set import DistilledSet
from hf_ssdd.evaluation.config import BenchmarkConfig
from hf_ssdd.evaluation.methods import METHODS
from hf_ssdd.evaluation.report import add_benchmark_results
from hf_ssdd.evaluation.results import read_results, run_id
from hf_ssdd.evaluation.runner import Benchmark

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
ROWS = {name: {"distilled": "krr_st", "kd": "kd_krr_st"}.get(name, name) for name in METHODS}  # tiny set: KRR-ST
METHOD_OF_ROW = {row: name for name, row in ROWS.items()}


@pytest.fixture(scope="module")
def finished(tiny_distilled, tiny_labelled, tmp_path_factory, write_benchmark_config):
    config = write_benchmark_config(tmp_path_factory.mktemp("bench") / "bench.yaml", tiny_distilled, tiny_labelled)
    rows = Benchmark(BenchmarkConfig.from_yaml(config)).run()
    return config, rows


def test_every_method_target_protocol_and_seed_gives_one_result(finished):
    config, rows = finished
    out = config.parent / "bench"
    assert read_results(out / "results.jsonl") == rows
    transfers = [r for r in rows if r["protocol"] != "label-free"]
    per_size = [name for name, method in METHODS.items() if method.per_size]
    assert len(transfers) == (len(per_size) + 2) * 2 * 2 * 2  # (methods) x targets x protocols x seeds
    assert len({run_id(r) for r in rows}) == len(rows)
    for row in transfers:
        assert {"target", "method", "arch", "seed", "accuracy", "m", "protocol"} <= set(row)
        assert 0 <= row["accuracy"] <= 1
        assert row["m"] == (6 if METHODS[METHOD_OF_ROW[row["method"]]].per_size else None)
    assert {r["num_train"] for r in transfers if r["target"] == "top-bottom-8"} == {8}


def test_label_free_scores_exist_for_every_model_and_head_r2_only_for_teacher_targets(finished):
    _, rows = finished
    label_free = {(r["method"], r["seed"]): r for r in rows if r["protocol"] == "label-free"}
    assert len(label_free) == len(METHODS) * 2
    for (method, _), row in label_free.items():
        assert row["probe_r2"] <= 1
        assert (row["r2"] is None) == (method in ("scratch", "random", "kmeans")), method


def test_reports_are_written(finished):
    config, _ = finished
    out = config.parent / "bench"
    table = (out / "results.md").read_text()
    for row in ROWS.values():
        assert f"| {row}" in table
    assert "± " in table and "top-bottom-8" in table and "ridge-probe R²" in table
    assert (out / "results.png").read_bytes()[:4] == b"\x89PNG"


def test_the_report_pairs_distilled_with_each_baseline_by_seed(finished):
    """Two seeds: each paired row of results.md is the mean of the seeds' differences, with its interval."""
    from hf_ssdd.evaluation.paired import comparisons

    config, rows = finished
    table = (config.parent / "bench" / "results.md").read_text()
    assert "## Paired differences" in table
    d = comparisons(rows)[("linear", "top-bottom-8")][(6, "convnet", "krr_st", "init")]
    by_seed = {(r["method"], r["seed"]): r["accuracy"] for r in rows
               if r["target"] == "top-bottom-8" and r["protocol"] == "linear"}
    assert d.seeds == 2 and d.mean == pytest.approx(sum(by_seed[("krr_st", s)] - by_seed[("init", s)]
                                                        for s in (0, 1)) / 2)
    linear_init_row = next(line for line in table.splitlines() if line.startswith("| 6 | krr_st | init |"))
    assert f"{d.mean * 100:+.2f} [{d.low * 100:+.2f}, {d.high * 100:+.2f}]" in linear_init_row


def test_an_interrupted_benchmark_resumes_without_redoing_finished_runs(finished, tiny_distilled, tiny_labelled,
                                                                         tmp_path):
    config, rows = finished
    out = tmp_path / "bench"
    out.mkdir()
    kept = rows[:7]
    (out / "benchmark_config.yaml").write_text((config.parent / "bench" / "benchmark_config.yaml").read_text())
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept) + '{"method": "sc')  # cut short
    resumed = Benchmark(BenchmarkConfig.from_yaml(config, {"output_dir": str(out)})).run()
    assert resumed[:7] == kept and len(resumed) == len(rows)
    assert sorted(map(run_id, resumed)) == sorted(map(run_id, rows))
    again = Benchmark(BenchmarkConfig.from_yaml(config, {"output_dir": str(out)}))
    assert again.run() == resumed, "a finished benchmark reruns nothing"


def test_the_distilled_card_gets_the_results(finished, tiny_distilled, tmp_path):
    import shutil

    config, _ = finished
    folder = tmp_path / "set"
    shutil.copytree(tiny_distilled, folder)
    add_benchmark_results(folder, config.parent / "bench")
    card = (folder / "README.md").read_text()
    assert "## Transfer results" in card and "| krr_st (m=6) |" in card and "| scratch |" in card
    results = DistilledSet.load(folder).metadata["transfer_results"]
    assert {r["method"] for r in results} == set(ROWS.values())
    with pytest.raises(ConfigError, match="no results"):
        add_benchmark_results(folder, tmp_path / "nowhere")


def test_results_made_under_other_settings_are_not_mixed_with_new_ones(finished, tmp_path):
    import shutil

    config, rows = finished
    with pytest.raises(ConfigError, match="other settings .*finetune"):
        Benchmark(BenchmarkConfig.from_yaml(config, {"finetune": {"max_steps": 4, "batch_size": 16}}))
    saved = yaml.safe_load((config.parent / "bench" / "benchmark_config.yaml").read_text())
    for parts in saved["fingerprints"].values():
        parts["set"] = "0" * 16  # as if the set had been distilled anew, from the same start
    shutil.copytree(config.parent / "bench", tmp_path / "bench")
    (tmp_path / "bench" / "benchmark_config.yaml").write_text(yaml.safe_dump(saved))
    with pytest.raises(ConfigError, match="the set .*rerun_changed_sets"):
        Benchmark(BenchmarkConfig.from_yaml(config, {"output_dir": str(tmp_path / "bench")}))
    again = Benchmark(BenchmarkConfig.from_yaml(config, {"output_dir": str(tmp_path / "bench"),
                                                         "rerun_changed_sets": True}))
    assert {r["method"] for r in rows} - {r["method"] for r in again.rows} == {"krr_st", "kd_krr_st"}
    assert not list((tmp_path / "bench" / "models").glob("krr_st-*")) and again.pending("krr_st", 6, "convnet", 0)
    assert list((tmp_path / "bench" / "models").glob("init-*")), "runs that do not read the set are kept"
    more_seeds = Benchmark(BenchmarkConfig.from_yaml(config, {"seeds": [0, 1, 2]}))
    assert more_seeds.pending("krr_st", 6, "convnet", 2) and not more_seeds.pending("krr_st", 6, "convnet", 1)


def test_a_setting_that_only_full_reads_may_change_until_full_has_run(finished, tmp_path):
    import shutil

    config, rows = finished
    with pytest.raises(ConfigError, match="other settings .*full_epochs"):
        Benchmark(BenchmarkConfig.from_yaml(config, {"full_epochs": 2}))
    shutil.copytree(config.parent / "bench", tmp_path / "bench")
    kept = [r for r in rows if r["method"] != "full"]
    (tmp_path / "bench" / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    with pytest.raises(ConfigError, match="other settings .*full_epochs"):  # its model is still there
        Benchmark(BenchmarkConfig.from_yaml(config, {"output_dir": str(tmp_path / "bench"), "full_epochs": 2}))
    for folder in (tmp_path / "bench" / "models").glob("full-*"):
        shutil.rmtree(folder)
    extended = Benchmark(BenchmarkConfig.from_yaml(config, {"output_dir": str(tmp_path / "bench"), "full_epochs": 2}))
    assert extended.pending("full", None, "convnet", 0) and not extended.pending("init", 6, "convnet", 0)


def test_the_commands_resume_a_benchmark_and_fill_in_the_card(finished, tiny_distilled, tmp_path, capsys):
    import shutil

    from hf_ssdd.cli import main

    config, rows = finished
    shutil.copytree(config.parent / "bench", tmp_path / "bench")
    main(["benchmark", "--config", str(config), "--output_dir", str(tmp_path / "bench")])
    assert read_results(tmp_path / "bench" / "results.jsonl") == rows, "nothing left to run"
    shutil.copytree(tiny_distilled, tmp_path / "set")
    main(["card", str(tmp_path / "set"), "--results", str(tmp_path / "bench")])
    assert "## Transfer results" in (tmp_path / "set" / "README.md").read_text()
    with pytest.raises(SystemExit):
        main(["benchmark", "--config", str(config), "--seeds"])
    assert "--key value pairs" in capsys.readouterr().err


def test_each_target_is_finetuned_for_its_own_steps_and_probed_as_linear_says(tiny_distilled, tiny_labelled,
                                                                              tmp_path, write_benchmark_config):
    targets = [{"dataset": tiny_labelled, "name": "short", "finetune_steps": 2},
               {"dataset": tiny_labelled, "name": "default"}]
    config = write_benchmark_config(tmp_path / "b.yaml", tiny_distilled, tiny_labelled, targets=targets,
                                    methods=["scratch"], seeds=[0], label_free_images=16)
    rows = Benchmark(BenchmarkConfig.from_yaml(config)).run()
    steps = {(r["target"], r["protocol"]): r["max_steps"] for r in rows if r["protocol"] != "label-free"}
    assert steps == {("short", "finetune"): 2, ("default", "finetune"): 3,  # finetune.max_steps of the config
                     ("short", "linear"): 20, ("default", "linear"): 20}


def test_every_probe_reads_batch_norm_statistics_re_estimated_on_the_held_out_images(tiny_distilled, tiny_labelled,
                                                                                     tmp_path, write_benchmark_config):
    """With `recalibrate_batch_norm` (the default) the linear and ridge probes see each network with its BatchNorm
    statistics re-estimated on the label-free images; the head R² and the saved models are those of pre-training."""
    import torch
    from transformers import AutoModelForImageClassification

    from hf_ssdd.batch_norm import batch_norm_layers

    rows = {}
    for recalibrate in (True, False):
        config = write_benchmark_config(tmp_path / f"{recalibrate}.yaml", tiny_distilled, tiny_labelled,
                                        methods=["scratch", "init"], seeds=[0], protocols=["linear"],
                                        output_dir=str(tmp_path / f"bench-{recalibrate}"),
                                        recalibrate_batch_norm=recalibrate)
        bench = Benchmark(BenchmarkConfig.from_yaml(config))
        rows[recalibrate] = {(r["method"], r["target"]): r for r in bench.run()}
        models = {p.name: p for p in (tmp_path / f"bench-{recalibrate}" / "models").iterdir()}
    saved = AutoModelForImageClassification.from_pretrained(models["scratch-convnet-seed0"])
    assert all(torch.equal(layer.running_mean, torch.zeros_like(layer.running_mean))
               for layer in batch_norm_layers(saved)), "the saved scratch model keeps its initial statistics"
    on, off = rows[True], rows[False]
    assert on[("init", "label-free")]["r2"] == off[("init", "label-free")]["r2"]
    assert on[("scratch", "label-free")]["probe_r2"] != off[("scratch", "label-free")]["probe_r2"]
    assert any(on[key]["accuracy"] != off[key]["accuracy"] for key in on if key[1] != "label-free")
    with pytest.raises(ConfigError, match="recalibrate_batch_norm changed"):
        Benchmark(BenchmarkConfig.from_yaml(config, {"recalibrate_batch_norm": True}))


def test_a_set_shared_by_another_method_stands_in_the_table_as_a_row_of_its_own(tiny_distilled, tiny_labelled,
                                                                                tmp_path, write_benchmark_config,
                                                                                write_shared_set):
    """Six 16x16 RGB images with labels, made elsewhere: pre-trained in the benchmark's 12x12 grey by the supervised
    recipe, reported as `labels-6`, paired with `distilled` of its size; a changed set is not mixed with its rows."""
    from transformers import AutoModelForImageClassification

    shared, _, _ = write_shared_set(tmp_path / "other", "parquet", "labels", n=6)
    config = write_benchmark_config(tmp_path / "b.yaml", tiny_distilled, tiny_labelled, methods=["distilled"],
                                    shared={"labels-6": shared}, targets=[{"dataset": tiny_labelled,
                                                                           "name": "top-bottom"}],
                                    protocols=["linear"], label_free_images=16)
    rows = Benchmark(BenchmarkConfig.from_yaml(config)).run()
    mine = {(r["seed"], r["target"]): r for r in rows if r["method"] == "labels-6"}
    assert set(mine) == {(s, t) for s in (0, 1) for t in ("top-bottom", "label-free")}
    assert all(r["m"] == 6 for r in mine.values()) and mine[(0, "label-free")]["r2"] is None
    folder = tmp_path / "bench" / "models" / "labels-6-m6-convnet-seed0"
    model = AutoModelForImageClassification.from_pretrained(folder)
    assert (model.config.num_channels, model.config.image_size, model.config.num_labels) == (1, 12, 2)
    assert "dsa: true" in (folder / "pretrain_config.yaml").read_text()
    table = (tmp_path / "bench" / "results.md").read_text()
    assert "- `labels-6`: the shared set `other`" in table and "| labels-6 (m=6) |" in table
    assert "| 6 | krr_st | labels-6 |" in table, "paired with the distilled set of its size"
    import datasets

    data_file = tmp_path / "other" / "data" / "train-00000-of-00001.parquet"
    datasets.Dataset.from_parquet(str(data_file)).map(lambda row: {"label": 1 - row["label"]}).to_parquet(
        str(tmp_path / "flipped.parquet"))
    (tmp_path / "flipped.parquet").replace(data_file)  # the same images, other labels
    with pytest.raises(ConfigError, match="the set shared:labels-6"):
        Benchmark(BenchmarkConfig.from_yaml(config))


def test_sets_with_labels_resume_only_under_the_recipe_they_ran_with(finished, tmp_path):
    """A benchmark saved before labels had their own recipe ran them as targets (lr 0.1, no DSA): its random and
    kmeans rows are not mixed with rows of the supervised recipe; without them, it resumes."""
    import shutil

    config, rows = finished
    shutil.copytree(config.parent / "bench", tmp_path / "bench")
    saved_file = tmp_path / "bench" / "benchmark_config.yaml"
    saved = yaml.safe_load(saved_file.read_text())
    assert saved["labels_recipe"] == {"learning_rate": 0.01, "weight_decay": 5e-4, "lr_drop": 0.5, "dsa": True}
    del saved["labels_recipe"]
    saved_file.write_text(yaml.safe_dump(saved))
    resume = {"output_dir": str(tmp_path / "bench")}
    with pytest.raises(ConfigError, match="other settings .*labels_recipe"):
        Benchmark(BenchmarkConfig.from_yaml(config, resume))
    kept = [r for r in rows if r["method"] not in ("random", "kmeans")]
    (tmp_path / "bench" / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    for method in ("random", "kmeans"):
        for folder in (tmp_path / "bench" / "models").glob(f"{method}-*"):
            shutil.rmtree(folder)
    assert Benchmark(BenchmarkConfig.from_yaml(config, resume)).pending("random", 6, "convnet", 0)


def test_sets_of_two_methods_at_one_size_are_rows_of_their_own_paired_with_each_other(tiny_distilled, tiny_labelled,
                                                                                      tmp_path,
                                                                                      write_benchmark_config):
    """A KRR-ST and an MKDT set of m = 6 from the same random start: one row per method (read from each card), one
    `init` for the start they share, and `mkdt − krr_st` paired seed by seed."""
    krr_st = DistilledSet.load(tiny_distilled)
    mkdt = DistilledSet(krr_st.pixel_values.flip(-1), krr_st.targets * 0.5, krr_st.mean, krr_st.std,
                        {**krr_st.metadata, "method": "mkdt"})
    config = write_benchmark_config(tmp_path / "b.yaml", tiny_distilled, tiny_labelled, methods=["init", "distilled"],
                                    targets=[{"dataset": tiny_labelled, "name": "top-bottom"}], protocols=["linear"],
                                    label_free_images=16)
    import shutil

    from hf_ssdd.distilled_set import CONFIG_FILE

    mkdt.save(tmp_path / "mkdt")
    shutil.copy(Path(tiny_distilled) / CONFIG_FILE, tmp_path / "mkdt")  # the run's config: the source's local path
    config.write_text(config.read_text().replace(f"- {tiny_distilled}", f"- {tiny_distilled}\n- {tmp_path}/mkdt"))
    rows = Benchmark(BenchmarkConfig.from_yaml(config)).run()
    assert {r["method"] for r in rows} == {"init", "krr_st", "mkdt"}
    assert len([r for r in rows if r["method"] == "init"]) == 2 * 2, "one start, two seeds, two scores"
    assert sorted(p.name for p in (tmp_path / "bench" / "models").iterdir())[-2:] == [
        "mkdt-m6-convnet-seed0", "mkdt-m6-convnet-seed1"]
    table = (tmp_path / "bench" / "results.md").read_text()
    assert "- `mkdt`: the set distilled by MKDT" in table and "| mkdt (m=6) |" in table
    assert "| 6 | mkdt | krr_st |" in table and "| 6 | krr_st | mkdt |" not in table


def test_a_high_loss_set_has_its_own_init_row(tiny_distilled):
    distilled = DistilledSet.load(tiny_distilled)
    assert [METHODS[name].row(name, distilled) for name in ("init", "distilled", "kd", "random")] == [
        "init", "krr_st", "kd_krr_st", "random"]
    distilled.metadata.update(method="mkdt", hyperparameters={**distilled.metadata["hyperparameters"],
                                                              "init": "high_loss"})
    assert [METHODS[name].row(name, distilled) for name in ("init", "distilled", "kd", "random")] == [
        "init_high_loss", "mkdt", "kd_mkdt", "random"]
