"""`evaluation.config`: a benchmark config is read by the typed loader of every stage; every unknown or mistyped key,
in the file, in its nested `targets`/`pretrain`/`finetune`/`linear`, or among the overrides, is a `ConfigError`."""

import dataclasses
from pathlib import Path

import pytest
import yaml

from hf_ssdd.config import ConfigError
from hf_ssdd.evaluation.config import BenchmarkConfig
from hf_ssdd.evaluation.resume import CONFIG_FILE, check_resumable

FASHION_MNIST = Path(__file__).parents[1] / "benchmarks" / "fashion_mnist.yaml"


def test_bad_configs_are_one_line_errors(tmp_path, write_benchmark_config):
    with pytest.raises(ConfigError, match="unknown"):
        BenchmarkConfig.from_yaml(write_benchmark_config(tmp_path / "a.yaml", "set", "target", methods=["magic"]))
    with pytest.raises(ConfigError, match="unknown key"):
        BenchmarkConfig.from_yaml(write_benchmark_config(tmp_path / "b.yaml", "set", "target", colour="red"))
    with pytest.raises(ConfigError, match="does not exist"):
        BenchmarkConfig.from_yaml(tmp_path / "missing.yaml")


def test_the_fashion_mnist_benchmark_parses():
    cfg = BenchmarkConfig.from_yaml(FASHION_MNIST)
    assert [t.name for t in cfg.targets] == ["fashion-mnist-100", "fashion-mnist-1000", "digits"]
    assert [Path(d).name for d in cfg.distilled] == [f"fashion-mnist-krr-st-m{m}" for m in (10, 100, 1000)]
    assert cfg.pretrain["max_steps"] == 1000 and cfg.seeds == [0, 1, 2, 3, 4]
    assert (FASHION_MNIST.parents[1] / cfg.teacher / "config.json").exists()  # the committed teacher


FORMER_FASHION_MNIST = {  # benchmarks/fashion_mnist.yaml of issue 4, with its pinned transfer settings
    "distilled": ["outputs/fashion-mnist-krr-st-m10", "outputs/fashion-mnist-krr-st-m100"],
    "teacher": "outputs/fashion-mnist-teacher", "output_dir": "outputs/benchmark-fashion-mnist",
    "methods": ["scratch", "init", "random", "kmeans", "distilled"],
    "targets": [{"dataset": "fashion_mnist", "name": "fashion-mnist-100", "max_train_samples": 100},
                {"dataset": "fashion_mnist", "name": "fashion-mnist-1000", "max_train_samples": 1000},
                {"dataset": "digits", "name": "digits"}],
    "protocols": ["linear", "finetune"], "seeds": [0, 1, 2],
    "pretrain": {"num_epochs": 1000, "batch_size": 256, "learning_rate": 0.1, "momentum": 0.9, "weight_decay": 1e-3},
    "finetune": {"max_steps": 200, "batch_size": 128, "learning_rate": 0.01, "crop_fill": "mean",
                 "target_normalization": "source"},
    "linear": {"max_steps": 500, "target_normalization": "source"},
    "full_epochs": 4, "label_free_split": "test", "label_free_images": 2000,
}


@pytest.mark.parametrize("values, message", [
    ({"seeds": "abc"}, "seeds='abc' in .* is not of type list\\[int\\]"),
    ({"seeds": [0, "one"]}, "seeds=\\[0, 'one'\\] in .* is not of type list\\[int\\]"),
    ({"full_epochs": 1.5}, "full_epochs=1.5 in .* is not of type int"),
    ({"rerun_changed_sets": "yes please"}, "rerun_changed_sets='yes please' in .* is not of type bool"),
    ({"pretrain": {"num_epoch": 3}}, "unknown key pretrain.num_epoch in .*; valid keys: .*num_epochs"),
    ({"pretrain": {"learning_rate": "fast"}}, "pretrain.learning_rate='fast' in .* is not of type float"),
    ({"pretrain": {"seed": 3}}, "pretrain.seed in .* is set by the benchmark"),
    ({"pretrain": {"channels": 3}}, "pretrain.channels in .* is set by the benchmark"),  # the source's, for every set
    ({"pretrain": {"dsa": "on"}}, "pretrain.dsa='on' in .* is not of type bool or null"),
    ({"shared": {"random": "user/set"}}, "shared: 'random' cannot name a row"),
    ({"shared": {"dc ipc10": "user/set"}}, "shared: 'dc ipc10' cannot name a row"),
    ({"shared": {"dc": 3}}, "shared: dc: 3 is not a folder or Hub id"),
    ({"finetune": {"max_steps": "10"}}, "finetune.max_steps='10' in .* is not of type int"),
    ({"linear": {"protocol": "finetune"}}, "linear.protocol in .* is set by the benchmark"),
    ({"linear": 3}, "linear=3 in .* is not of type dict"),
    ({"targets": [{"dataset": "d", "max_train_samples": "all"}]}, "targets\\[0\\].max_train_samples='all' in .*"),
    ({"targets": [{"dataset": "d", "colour": "red"}]}, "unknown key targets\\[0\\].colour in"),
    ({"targets": ["d"]}, "targets\\[0\\]='d' in .* must be a mapping"),
])
def test_a_mistyped_or_unknown_key_anywhere_in_the_file_is_one_line_naming_it(
    tmp_path, write_benchmark_config, values, message
):
    with pytest.raises(ConfigError, match=message) as info:
        BenchmarkConfig.from_yaml(write_benchmark_config(tmp_path / "c.yaml", "set", "target", **values))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("overrides, message", [
    ({"seeds": "abc"}, "--seeds='abc' on the command line is not of type list\\[int\\]"),
    ({"colour": "red"}, "unknown key --colour on the command line; valid keys"),
    ({"pretrain": {"num_epochs": "many"}}, "--pretrain.num_epochs='many' on the command line is not of type int"),
])
def test_overrides_are_checked_and_named_as_command_line_options(
    tmp_path, write_benchmark_config, overrides, message
):
    with pytest.raises(ConfigError, match=message):
        BenchmarkConfig.from_yaml(write_benchmark_config(tmp_path / "c.yaml", "set", "target"), overrides)


def test_overrides_win_over_the_file(tmp_path, write_benchmark_config):
    path = write_benchmark_config(tmp_path / "c.yaml", "set", "target")
    cfg = BenchmarkConfig.from_yaml(path, {"seeds": [5], "linear": {}})
    assert cfg.seeds == [5] and cfg.linear == {} and cfg.finetune == {"max_steps": 3, "batch_size": 16}


def test_a_benchmark_saved_before_the_transfer_settings_grew_resumes_under_its_pinned_config(tmp_path):
    """`benchmark_config.yaml` is compared key by key on resume. A folder saved before `crop_fill`,
    `target_normalization` and `finetune_steps` existed ran with mean padding and the source's statistics, which
    the issue 4 config pinned, and without re-estimating BatchNorm statistics before its probes: with that
    pinned too, it resumes; under the new defaults it refuses instead of mixing the two."""
    target = {"config": None, "train_split": "train", "test_split": "test", "image_column": None, "label_column": None}
    saved = {  # dataclasses.asdict of benchmarks/fashion_mnist.yaml as the former hf_ssdd.benchmark parsed it
        "distilled": ["outputs/fashion-mnist-krr-st-m10", "outputs/fashion-mnist-krr-st-m100"],
        "targets": [{"dataset": "fashion_mnist", "name": "fashion-mnist-100", "max_train_samples": 100, **target},
                    {"dataset": "fashion_mnist", "name": "fashion-mnist-1000", "max_train_samples": 1000, **target},
                    {"dataset": "digits", "name": "digits", "max_train_samples": None, **target}],
        "teacher": "outputs/fashion-mnist-teacher", "output_dir": "outputs/benchmark-fashion-mnist",
        "methods": ["scratch", "init", "random", "kmeans", "distilled"], "protocols": ["linear", "finetune"],
        "archs": ["convnet"], "seeds": [0, 1, 2],
        "pretrain": {"num_epochs": 1000, "batch_size": 256, "learning_rate": 0.1, "momentum": 0.9,
                     "weight_decay": 0.001},
        "finetune": {"max_steps": 200, "batch_size": 128, "learning_rate": 0.01}, "linear": {"max_steps": 500},
        "full_epochs": 4, "label_free_split": "test", "label_free_images": 2000, "rerun_changed_sets": False,
    }
    (tmp_path / CONFIG_FILE).write_text(yaml.safe_dump(saved))
    (tmp_path / "former.yaml").write_text(yaml.safe_dump(FORMER_FASHION_MNIST))
    cfg = BenchmarkConfig.from_yaml(tmp_path / "former.yaml", {"recalibrate_batch_norm": False})
    check_resumable(cfg, tmp_path, {}, {})
    with pytest.raises(ConfigError, match="recalibrate_batch_norm changed"):
        check_resumable(dataclasses.replace(cfg, recalibrate_batch_norm=True), tmp_path, {}, {})
    with pytest.raises(ConfigError, match="finetune, linear changed"):
        check_resumable(dataclasses.replace(cfg, finetune={**cfg.finetune, "target_normalization": "own"},
                                            linear={"max_steps": 500}), tmp_path, {}, {})
    with pytest.raises(ConfigError, match="targets\\[digits\\] changed"):
        digits = dataclasses.replace(cfg.targets[2], finetune_steps=50)
        check_resumable(dataclasses.replace(cfg, targets=[*cfg.targets[:2], digits]), tmp_path, {}, {})


def test_the_mkdt_preset_sets_mkdts_protocol_under_what_the_file_gives(tmp_path, write_benchmark_config):
    path = write_benchmark_config(tmp_path / "a.yaml", "set", "target", preset="mkdt", linear={"max_steps": 7})
    cfg = BenchmarkConfig.from_yaml(path)
    assert cfg.pretrain == {"num_epochs": 3, "batch_size": 256, "momentum": 0.9, "weight_decay": 1e-4,
                            "lr_drop": 1.0, "dsa": False, "crop_padding": 0, "flip": False}
    assert cfg.linear["max_steps"] == 7 and cfg.linear["probe_rounds"] == 20 and cfg.linear["weight_decay"] == 2e-3
    assert not cfg.linear["standardize_features"] and cfg.linear["label_sampling"] == "uniform"
    assert BenchmarkConfig.from_yaml(write_benchmark_config(tmp_path / "b.yaml", "set", "target")).linear == {
        "max_steps": 20}
    with pytest.raises(ConfigError, match="preset='kd' is unknown; choose from hf_ssdd, mkdt"):
        BenchmarkConfig.from_yaml(write_benchmark_config(tmp_path / "c.yaml", "set", "target", preset="kd"))


def test_a_target_may_give_its_labels_as_a_fraction_and_is_named_by_it(tmp_path):
    cfg = BenchmarkConfig(distilled=["set"], targets=[{"dataset": "t", "train_fraction": 0.01},
                                                      {"dataset": "t", "max_train_samples": 100}])
    assert [t.name for t in cfg.targets] == ["t-1%", "t-100"]
    with pytest.raises(ConfigError, match="target 't': train_fraction=2 must be in"):
        BenchmarkConfig(distilled=["set"], targets=[{"dataset": "t", "train_fraction": 2}])
    with pytest.raises(ConfigError, match="target 't': give max_train_samples or train_fraction, not both"):
        BenchmarkConfig(distilled=["set"], targets=[{"dataset": "t", "train_fraction": 0.1, "max_train_samples": 9}])


def test_the_mkdt_benchmark_parses_and_shares_the_sets_of_ours():
    ours = BenchmarkConfig.from_yaml(FASHION_MNIST.with_name("fashion_mnist_methods.yaml"))
    theirs = BenchmarkConfig.from_yaml(FASHION_MNIST.with_name("fashion_mnist_methods_mkdt.yaml"))
    assert theirs.preset == "mkdt" and ours.preset == "hf_ssdd"
    assert theirs.distilled == ours.distilled and theirs.methods == ours.methods and theirs.seeds == ours.seeds
    assert {t.train_fraction for t in theirs.targets} == {0.01, 0.05}
    assert all(Path(FASHION_MNIST.parents[1], t.dataset, "README.md").is_file()
               for t in ours.targets + theirs.targets if "/" in t.dataset)  # the committed letters
