"""The paper's benchmark, ready to run: recipes/configs/paper/SOURCE/{teacher,distill,benchmark}.yaml and
recipes/paper/run.sh. Every config parses into its typed config; every target's splits and columns exist in a local
stand-in built with the features of its Hub copy; run.sh refuses a bad call in one line; and (slow) run.sh runs
teacher -> distill -> benchmark on stand-ins, then skips it all when run again."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hf_ssdd.evaluation.config import BenchmarkConfig
from hf_ssdd.methods.krr_st.config import KRRSTConfig
from hf_ssdd.parsing import parse_config
from hf_ssdd.teacher_config import TeacherTrainConfig

ROOT = Path(__file__).parents[1]
PAPER = ROOT / "recipes" / "configs" / "paper"
RUN = ROOT / "recipes" / "paper" / "run.sh"
SOURCES = ("cifar100", "tinyimagenet", "imagenet64")
CIFAR_SIZE = ("uoft-cs/cifar10", "uoft-cs/cifar100")  # fine-tuned 10,000 steps; the fine-grained five 5,000


def hub_copies():
    """Each target's Hub copy as read from its card or viewer (see benchmark.yaml): `{id: (splits, features)}`, with
    the first few names of each ClassLabel (all ten of CIFAR-10's), in the card's order."""
    from datasets import ClassLabel, Image, Sequence, Value

    def labels(*names):
        return ClassLabel(names=list(names))

    cifar10 = labels("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    return {
        "uoft-cs/cifar10": (("train", "test"), {"img": Image(), "label": cifar10}),
        "uoft-cs/cifar100": (("train", "test"), {"img": Image(), "fine_label": labels("apple", "aquarium_fish", "baby"),
                                                 "coarse_label": labels("aquatic_mammals", "fish", "flowers")}),
        "Donghyun99/FGVC-Aircraft": (("train", "val", "test"),
                                     {"image": Image(), "label": labels("707-320", "727-200", "737-200")}),
        "tanganke/stanford_cars": (("train", "test"), {"image": Image(), "label": labels(
            "AM General Hummer SUV 2000", "Acura RL Sedan 2012", "Acura TL Sedan 2012")}),
        "bentrevett/caltech-ucsd-birds-200-2011": (("train", "test"), {
            "image": Image(), "label": labels("001.Black_footed_Albatross", "002.Laysan_Albatross",
                                              "003.Sooty_Albatross"),
            "bbox": Sequence(Value("float32"), length=4)}),
        "Donghyun99/Stanford-Dogs": (("train", "test"), {
            "image": Image(), "label": labels("Chihuahua", "Japanese_spaniel", "Maltese_dog")}),
        "Donghyun99/Oxford-Flower-102": (("train", "validation", "test"), {
            "image": Image(), "label": labels("pink primrose", "hard-leaved pocket orchid", "canterbury bells")}),
    }


def stand_in(path: Path, splits, features, per_class: int = 4, size=(40, 30)):
    """A `save_to_disk` DatasetDict of `splits` with exactly `features`: `per_class` images per class of the first
    ClassLabel, each a solid colour of its class with noise, `size` (W, H) pixels (not square, as photographs)."""
    import datasets
    from PIL import Image

    rng = np.random.default_rng(0)
    label_columns = [name for name, f in features.items() if isinstance(f, datasets.ClassLabel)]
    classes = features[label_columns[0]].num_classes
    parts = {}
    for split in splits:
        labels = np.repeat(np.arange(classes), per_class)
        rows = {name: [] for name in features}
        for label in labels:
            colour = rng.integers(0, 60, (size[1], size[0], 3)) + 60 * (label % 4)
            for name, feature in features.items():
                if isinstance(feature, datasets.Image):
                    rows[name].append(Image.fromarray(colour.astype(np.uint8)))
                elif isinstance(feature, datasets.ClassLabel):
                    rows[name].append(int(label) % feature.num_classes)
                else:
                    rows[name].append([0.0, 0.0, 10.0, 10.0])
        parts[split] = datasets.Dataset.from_dict(rows, features=datasets.Features(features))
    datasets.DatasetDict(parts).save_to_disk(str(path))
    return str(path)


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory):
    """`{hub id: folder}`: a stand-in for every target (CIFAR ones at 32x32, like their Hub copies)."""
    root = tmp_path_factory.mktemp("hub")
    return {hub_id: stand_in(root / hub_id.replace("/", "--"), splits, features,
                             size=(32, 32) if hub_id in CIFAR_SIZE else (40, 30))
            for hub_id, (splits, features) in hub_copies().items()}


def benchmark(source: str) -> BenchmarkConfig:
    return BenchmarkConfig.from_yaml(PAPER / source / "benchmark.yaml")


@pytest.mark.parametrize("source", SOURCES)
def test_every_paper_config_parses_into_its_typed_config(source):
    distill = parse_config(KRRSTConfig, ["--config", str(PAPER / source / "distill.yaml")])
    assert distill.max_steps == 160_000 and distill.teacher == f"outputs/paper/{source}/teacher"
    bench = benchmark(source)
    assert bench.distilled == [distill.output_dir] and bench.teacher == distill.teacher and len(bench.seeds) == 3
    assert bench.finetune["target_normalization"] == "own" and bench.protocols == ["finetune"]
    teacher = parse_config(TeacherTrainConfig, ["--config", str(PAPER / source / "teacher.yaml")])
    assert (teacher.arch, teacher.stem, teacher.stem_stride) == ("resnet18", "cifar", 1)
    assert (teacher.dataset, teacher.image_column, teacher.output_dir) == (distill.dataset, distill.image_column,
                                                                           distill.teacher)


# The normalisation the authors feed their teacher (db-Lee/selfsup_dd, data/augmentation.py: MEAN and STD by image
# side): {(their dataset name, side): (mean, std)}. A recipe's teacher sees what theirs saw.
AUTHORS_NORMALIZATION = {
    ("cifar100", 32): ((0.5071, 0.4866, 0.4409), (0.2673, 0.2564, 0.2762)),
    ("tinyimagenet", 64): ((0.4802, 0.4481, 0.3975), (0.2770, 0.2691, 0.2821)),
    ("imagenet", 64): ((0.4810, 0.4574, 0.4078), (0.2633, 0.2560, 0.2708)),
}
THEIR_NAME = {"cifar100": "cifar100", "tinyimagenet": "tinyimagenet", "imagenet64": "imagenet"}


@pytest.mark.parametrize("source", SOURCES)
def test_each_recipes_teacher_is_normalised_as_the_authors_normalise_theirs(source):
    cfg = parse_config(TeacherTrainConfig, ["--config", str(PAPER / source / "teacher.yaml")])
    mean, std = AUTHORS_NORMALIZATION[THEIR_NAME[source], cfg.resolution]
    assert (tuple(cfg.mean), tuple(cfg.std)) == (mean, std)


def test_every_cifar100_normalisation_the_docs_give_is_the_authors_at_32_px():
    """The README's and `import-teacher`'s example import the authors' CIFAR-100 teacher; the stand-in teacher of the
    benchmarks is its shape. Each names the authors' 32 px values, not the 64 px ones (green 0.4865)."""
    mean, std = AUTHORS_NORMALIZATION["cifar100", 32]
    values = " ".join(map(str, mean)) + " --image_std " + " ".join(map(str, std))
    for path in ("README.md", "hf_ssdd/teacher_import.py"):
        assert f"--image_mean {values}" in (ROOT / path).read_text(), path
    assert f"save_preprocessor(path, 32, {list(mean)}, {list(std)})" in (ROOT / "benchmarks/workloads.py").read_text()


def test_the_three_sources_share_the_papers_seven_targets_and_their_fine_tuning_steps():
    targets = [dataclasses.asdict(t) for t in benchmark("cifar100").targets]
    assert all([dataclasses.asdict(t) for t in benchmark(source).targets] == targets for source in SOURCES)
    assert [t["dataset"] for t in targets] == list(hub_copies())
    assert {t["dataset"]: t["finetune_steps"] for t in targets} == {
        hub_id: 10_000 if hub_id in CIFAR_SIZE else 5_000 for hub_id in hub_copies()}


@pytest.mark.parametrize("target", [t.name for t in benchmark("cifar100").targets])
def test_every_targets_splits_and_columns_exist_in_its_stand_in(target, stand_ins):
    from hf_ssdd.targets import load_target_splits

    spec = next(t for t in benchmark("cifar100").targets if t.name == target)
    train, test = load_target_splits(
        stand_ins[spec.dataset], train_split=spec.train_split, test_split=spec.test_split,
        image_column=spec.image_column, label_column=spec.label_column, resolution=32, channels=3,
    )
    _, features = hub_copies()[spec.dataset]
    label = spec.label_column or next(name for name, f in features.items() if hasattr(f, "names"))
    assert train.class_names == features[label].names and train.images.shape[1:] == (3, 32, 32)
    assert len(test) and len(train) == 4 * len(train.class_names) * len(spec.train_split.split("+"))


def run(*args, env=None, **kwargs):
    return subprocess.run(["bash", str(RUN), *args], cwd=ROOT, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, **kwargs)


def test_run_sh_refuses_a_bad_call_in_one_line_before_any_work(tmp_path):
    hf = str(Path(sys.executable).parent / "hf-ssdd")
    wrong = run("cifar10", env={"HF_SSDD": hf})
    assert wrong.returncode == 2 and "source 'cifar10' is not one of cifar100, tinyimagenet, imagenet64" in wrong.stderr
    missing = run("cifar100", env={"HF_SSDD": hf, "TEACHER_CHECKPOINT": str(tmp_path / "none.pt")})
    assert missing.returncode == 2 and "TEACHER_CHECKPOINT=" in missing.stderr and "is not a file" in missing.stderr
    no_command = run("cifar100", env={"HF_SSDD": str(tmp_path / "hf-ssdd")})
    assert no_command.returncode == 2 and "not found; run scripts/setup.sh or set HF_SSDD" in no_command.stderr


def flow(value) -> str:
    """A YAML flow value for a `--key value` override (JSON is YAML)."""
    return "'" + json.dumps(value) + "'"


def solo_learn_checkpoint(path: Path, widths: list[int]) -> str:
    """A ResNet-18 of `widths` saved as solo-learn saves its backbone: torchvision's keys under `backbone.`, in
    `state_dict`."""
    import torch

    from hf_ssdd.resnet import TorchvisionResNetConfig, TorchvisionResNetModel

    model = TorchvisionResNetModel(TorchvisionResNetConfig.preset("resnet18", hidden_sizes=widths))
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in model.state_dict().items()}, "epoch": 999}, path)
    return str(path)


@pytest.mark.slow
@pytest.mark.parametrize("teacher", ["trained", "imported"])
def test_run_sh_runs_teacher_distill_and_benchmark_on_stand_ins_then_skips_them(teacher, stand_ins, tmp_path):
    """The cifar100 recipe with each Hub id mapped to its stand-in and every size shrunk, its teacher trained by
    train-teacher or imported from a checkpoint as the authors' is (TEACHER_CHECKPOINT); CPU, one process."""
    source = stand_ins["uoft-cs/cifar100"]  # the source is CIFAR-100 too: its train split distilled, test held out
    steps = {"cifar10": 3, "cifar100": 3}  # the shrunk 10,000 / 5,000 of the paper
    targets = [{**dataclasses.asdict(t), "dataset": stand_ins[t.dataset], "finetune_steps": steps.get(t.name, 2)}
               for t in benchmark("cifar100").targets]
    widths = "--hidden_sizes 16 32 64 128"  # a narrow ResNet-18
    env = {
        "OUTPUT_ROOT": str(tmp_path / "out"), "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": str(ROOT), "HF_SSDD": str(Path(sys.executable).parent / "hf-ssdd"),
        "TEACHER_ARGS": f"{widths} --dataset {source} --max_steps 2 --batch_size 8 --projector_dim 16 --report_to none",
        "DISTILL_ARGS": f"--dataset {source} --num_synthetic 6 --max_steps 2 --batch_size 8 --learner_width 4 "
                        "--pool_size 2 --pool_steps 2 --save_steps 1 --report_to none",
        "BENCHMARK_ARGS": f"--targets {flow(targets)} --seeds '[0]' --methods '[scratch, distilled]' "
                          "--pretrain '{num_epochs: 1}' --finetune '{max_steps: 5, batch_size: 8}' "
                          "--label_free_images 8",
    }
    if teacher == "imported":
        env["TEACHER_CHECKPOINT"] = solo_learn_checkpoint(tmp_path / "barlow_twins_resnet18_cifar100.pt",
                                                          [16, 32, 64, 128])
        env["TEACHER_ARGS"] = widths
    first = run("cifar100", env=env, timeout=900)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    out = tmp_path / "out" / "cifar100"
    card = json.loads((out / "teacher" / "config.json").read_text())
    assert (card["stem"], card["hidden_sizes"]) == ("cifar", [16, 32, 64, 128])
    rows = [json.loads(line) for line in (out / "benchmark" / "results.jsonl").read_text().splitlines()]
    tuned = {r["target"]: r["max_steps"] for r in rows if r["protocol"] == "finetune"}
    assert tuned == {t["name"]: t["finetune_steps"] for t in targets}  # each target its own steps
    assert {r["method"] for r in rows} == {"scratch", "krr_st"} and (out / "benchmark" / "results.md").exists()
    again = run("cifar100", env=env, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "teacher: " in again.stdout and "is finished, skipped" in again.stdout
    assert (out / "benchmark" / "results.jsonl").read_text().count("\n") == len(rows)


@pytest.mark.parametrize("source, m, steps, image_lr, syn_steps, depth", [
    ("cifar100", 1000, 5000, 1000.0, 40, 3),  # MKDT's commands/distill/barlow_twins/CIFAR100/2_per.sh
    ("tinyimagenet", 2000, 10_000, 1e5, 10, 4),  # .../Tiny/2_per.sh, ConvNetD4 experts
])
def test_the_mkdt_configs_hold_mkdts_settings(source, m, steps, image_lr, syn_steps, depth):
    from hf_ssdd.methods.mkdt.config import MKDTConfig
    from hf_ssdd.trajectories_config import TrajectoriesConfig

    experts = parse_config(TrajectoriesConfig, ["--config", str(PAPER / source / "trajectories.yaml")])
    assert (experts.num_experts, experts.num_epochs, experts.learner_depth, experts.learner_width) == (100, 20, depth,
                                                                                                        128)
    assert (experts.learner_norm, experts.learner_double_width, experts.weight_decay) == ("instance", False, 1e-4)
    mkdt = parse_config(MKDTConfig, ["--config", str(PAPER / source / "mkdt.yaml")])
    assert (mkdt.num_synthetic, mkdt.max_steps, mkdt.image_learning_rate, mkdt.syn_steps) == (m, steps, image_lr,
                                                                                              syn_steps)
    assert (mkdt.expert_epochs, mkdt.max_start_epoch, mkdt.init) == (2, 2, "high_loss")
    assert (mkdt.trajectories, mkdt.dataset, mkdt.teacher) == (experts.output_dir, experts.dataset, experts.teacher)
