"""`benchmark`: does a distilled set beat simply taking `m` real images? Methods x targets x protocols x seeds.

    hf-ssdd benchmark --config benchmarks/fashion_mnist.yaml

Every method gives a pre-trained model, saved under `output_dir/models/<method>-m<m>-<arch>-seed<s>/` (`scratch`
is the network at its random initialisation). Each model is then scored by

- transfer to every target with every protocol (`finetune`, `linear`): accuracy, by `transfer.run_transfer`;
- the label-free score on held-out source images, which needs no labels at all: `r2`, how well the model's head
  reproduces the teacher's representations (what KRR-ST optimises; only for heads trained on teacher targets), and
  `probe_r2`, how well a ridge regression from its frozen features does (defined for every model).

Each result is one line of `output_dir/results.jsonl`, appended as soon as it exists; a rerun skips every line
already there, and every model folder already saved, so an interrupted benchmark resumes where it stopped.
`results.md` (mean +- std, one row per method, one column per target) and `results.png` are rewritten at the end.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml

from .atomic import write_file
from .config import ConfigError, PretrainConfig, TransferConfig, check_output_dir
from .data import Normalization

LABEL_FREE = "label-free"


@dataclass
class TargetSpec:
    """One transfer target: a labelled dataset and how many of its training labels the learner may see."""

    dataset: str
    name: str | None = None  # column title in the tables; default: dataset (and its label count)
    max_train_samples: int | None = None
    config: str | None = None
    train_split: str = "train"
    test_split: str | None = "test"
    image_column: str | None = None
    label_column: str | None = None

    def __post_init__(self):
        if self.name is None:
            self.name = f"{self.dataset}-{self.max_train_samples}" if self.max_train_samples else self.dataset


@dataclass
class BenchmarkConfig:
    """What to compare (methods, distilled sets), on what (targets, protocols), how often (seeds)."""

    distilled: list[str]  # distilled sets (folders or Hub ids); their sizes m are the sizes of every baseline
    targets: list[TargetSpec]
    teacher: str | None = None  # teacher of the baselines' targets; default: the one recorded in the set's card
    output_dir: str = "benchmark"
    methods: list[str] = field(default_factory=lambda: ["scratch", "init", "random", "kmeans", "distilled"])
    protocols: list[str] = field(default_factory=lambda: ["linear", "finetune"])
    archs: list[str] = field(default_factory=lambda: ["convnet"])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    pretrain: dict = field(default_factory=dict)  # PretrainConfig fields
    finetune: dict = field(default_factory=dict)  # TransferConfig fields for protocol finetune
    linear: dict = field(default_factory=dict)  # TransferConfig fields for protocol linear
    full_epochs: int = 1  # epochs of the `full` method over the whole source
    label_free_split: str = "test"  # held-out source split of the label-free score
    label_free_images: int = 2000
    rerun_changed_sets: bool = False  # a set distilled anew: redo the runs that read it, keep the others

    def __post_init__(self):
        self.targets = [t if isinstance(t, TargetSpec) else TargetSpec(**t) for t in self.targets]
        if not self.distilled:
            raise ConfigError("distilled: give at least one distilled set (folder or Hub id).")
        unknown = sorted(set(self.methods) - set(METHODS))
        if unknown:
            raise ConfigError(f"methods {unknown} are unknown; choose from {', '.join(METHODS)}.")
        bad = sorted(set(self.protocols) - {"linear", "finetune"})
        if bad:
            raise ConfigError(f"protocols {bad} are unknown; choose from linear, finetune.")
        names = [t.name for t in self.targets]
        if len(set(names)) != len(names):
            raise ConfigError(f"target names {names} repeat; give each target a distinct `name`.")

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: dict | None = None) -> "BenchmarkConfig":
        """Read a YAML file; `overrides` (top-level keys) win. Unknown keys are errors."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} does not exist.")
        values = {**(yaml.safe_load(path.read_text()) or {}), **(overrides or {})}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown key(s) {unknown} in {path}; valid keys: {', '.join(sorted(known))}.")
        try:
            return cls(**values)
        except TypeError as err:
            raise ConfigError(f"{path}: {err}") from None


# ---------------------------------------------------------------------------------------------------------------------
# Methods: each turns (source, distilled set, seed) into the set a model is pre-trained on
# ---------------------------------------------------------------------------------------------------------------------


class Source:
    """The real images behind a distilled set, in its space, with teacher features computed once."""

    def __init__(self, distilled, teacher_name: str | None, device):
        from .data import decode_images, image_column, load_source
        from .teachers import Teacher

        meta = distilled.metadata
        source, hyper = meta["source"], meta["hyperparameters"]
        ds = load_source(source["id"], source.get("config"), source["split"], source.get("revision"))
        if hyper.get("max_samples"):
            ds = ds.select(range(min(hyper["max_samples"], len(ds))))
        column = image_column(ds, source.get("image_column"))
        self.images, _, _ = decode_images(ds, column, meta["resolution"], meta["channels"])  # uint8 (N, C, R, R)
        self.labels = _labels(ds)
        self.normalization = Normalization(tuple(distilled.mean), tuple(distilled.std))
        self.seed, self.metadata, self.device = hyper["seed"], meta, device
        self.teacher = Teacher.from_pretrained(teacher_name or meta["teacher"]["id"]).to(device).eval()
        self._features = None

    def teacher_targets(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 `(n, C, R, R)` -> teacher representations `(n, d)`, as the distiller computes them."""
        from .transfer import batched

        return batched(lambda x: self.teacher(x.float() / 255), images, self.device, chunk_size=512)

    def features(self) -> torch.Tensor:
        if self._features is None:
            self._features = self.teacher_targets(self.images)
        return self._features

    def subset(self, indices: torch.Tensor, with_labels: bool):
        from .pretraining import TrainingSet

        if with_labels and self.labels is None:
            raise ConfigError("the source has no labels; use the *_mse variants of random and kmeans.")
        x = self.normalization.normalize(self.images[indices])
        y = self.labels[indices] if with_labels else self.teacher_targets(self.images[indices])
        return TrainingSet(x, y, self.normalization)


def _labels(ds) -> torch.Tensor | None:
    import datasets

    for name, feature in ds.features.items():
        if isinstance(feature, datasets.ClassLabel):
            return torch.tensor(ds[name], dtype=torch.long)
    return None


def _init(source, distilled, seed):
    from .subsets import initial_indices

    return source.subset(initial_indices(len(source.images), len(distilled.pixel_values), source.seed), False)


def _random(with_labels):
    from .subsets import random_subset

    return lambda source, distilled, seed: source.subset(
        random_subset(len(source.images), len(distilled.pixel_values), seed), with_labels
    )


def _kmeans(with_labels):
    from .subsets import kmeans_subset

    return lambda source, distilled, seed: source.subset(
        kmeans_subset(source.features().to(source.device), len(distilled.pixel_values), seed).cpu(), with_labels
    )


def _distilled(source, distilled, seed):
    from .pretraining import distilled_training_set

    return distilled_training_set(distilled)


def _full(source, distilled, seed):
    from .pretraining import TrainingSet

    return TrainingSet(source.normalization.normalize(source.images), source.features(), source.normalization)


@dataclass(frozen=True)
class Method:
    """How a method builds its pre-training set; `kd` regresses the teacher online; `scratch` does not train."""

    build: Callable | None
    help: str
    kd: bool = False
    per_size: bool = True  # False: one model per seed, whatever m
    reads: str | None = None  # what of the distilled set it depends on: "set" (its tensors) or "init" (its start)


METHODS = {
    "scratch": Method(None, "no pre-training: the network at its random initialisation", per_size=False),
    "init": Method(_init, "the distiller's starting point: its m real images with teacher targets (MSE)",
                   reads="init"),
    "random": Method(_random(True), "m random real images with their labels (cross-entropy)"),
    "random_mse": Method(_random(False), "m random real images with teacher targets (MSE)"),
    "kmeans": Method(_kmeans(True), "real images nearest to m k-means centres of teacher features, with labels"),
    "kmeans_mse": Method(_kmeans(False), "the k-means images with teacher targets (MSE)"),
    "distilled": Method(_distilled, "the distilled set: synthetic images and learned targets (MSE)", reads="set"),
    "kd": Method(_distilled, "knowledge distillation: the teacher regressed online on the distilled images", kd=True,
                 reads="set"),
    "full": Method(_full, "the whole source with teacher targets (MSE): the upper reference", per_size=False),
}


# ---------------------------------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------------------------------


CONFIG_FILE = "benchmark_config.yaml"
SETTINGS = ("teacher", "pretrain", "finetune", "linear", "full_epochs", "label_free_split", "label_free_images")
READ_BY_ONE_METHOD = {"full_epochs": "full"}  # a setting only that method reads: a change matters once it has run


def fingerprints(distilled) -> dict[str, str]:
    """What the runs of a set depend on: its tensors (`set`) and its starting images (`init`)."""
    hyper = distilled.metadata.get("hyperparameters", {})
    start = f"seed={hyper.get('seed')},m={len(distilled.pixel_values)},max_samples={hyper.get('max_samples')}"
    return {"set": distilled.fingerprint(), "init": start}


def forget(out: Path, m: int, changed: set[str]) -> None:
    """Drop the results and models of size `m` whose methods read a `changed` part of the set."""
    methods = {name for name, method in METHODS.items() if method.reads in changed}
    rows = [r for r in read_results(out / "results.jsonl") if not (r["method"] in methods and r["m"] == m)]
    write_file(out / "results.jsonl", lambda path: path.write_text("".join(json.dumps(r) + "\n" for r in rows)))
    for name in methods:
        for folder in (out / "models").glob(f"{name}-m{m}-*"):
            shutil.rmtree(folder)


def check_resumable(cfg: BenchmarkConfig, out: Path, sets: dict[str, dict], sizes: dict[str, int],
                    main_process: bool = True) -> None:
    """Results in `out` may be resumed or extended (more seeds, methods, targets) only under the same settings and
    with the same distilled sets; with `rerun_changed_sets`, the runs that read a changed set are dropped instead.
    A setting that one method alone reads (`READ_BY_ONE_METHOD`) may change as long as that method has not run."""
    if not out.exists() or not any(out.iterdir()):
        return
    if not (out / CONFIG_FILE).exists():
        check_output_dir(str(out), overwrite=False)  # a folder that is not a benchmark's: refuse, with its message
        return
    saved = yaml.safe_load((out / CONFIG_FILE).read_text())
    current = dataclasses.asdict(cfg)
    differ = [key for key in SETTINGS if saved.get(key) != current[key]
              and (key not in READ_BY_ONE_METHOD or has_run(out, READ_BY_ONE_METHOD[key]))]
    saved_targets = {t["name"]: t for t in saved.get("targets", [])}
    differ += [f"targets[{t['name']}]" for t in current["targets"] if saved_targets.get(t["name"], t) != t]
    saved_sets = saved.get("fingerprints", {})
    for name, parts in sets.items():
        before = saved_sets.get(name, parts)
        before = {"set": before} if isinstance(before, str) else before
        changed = {key for key, value in parts.items() if before.get(key, value) != value}
        if changed and cfg.rerun_changed_sets:
            if main_process:
                forget(out, sizes[name], changed)
        elif changed:
            differ.append(f"the set {name} (pass --rerun_changed_sets true to redo only the runs that read it)")
    if differ:
        raise ConfigError(
            f"{out} holds results made with other settings ({', '.join(differ)} changed); "
            "restore them to resume, or pass another output_dir."
        )


def has_run(out: Path, method: str) -> bool:
    """Whether `method` has results or a pre-trained model in the benchmark folder `out`."""
    ran = any(r["method"] == method for r in read_results(out / "results.jsonl"))
    return ran or any((out / "models").glob(f"{method}-*"))


def run_id(row: dict) -> str:
    return "|".join(str(row[k]) for k in ("method", "m", "arch", "seed", "target", "protocol"))


def read_results(path: Path) -> list[dict]:
    """Rows of a results.jsonl; a last line cut short by a crash is dropped (it will be run again)."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return rows


class Benchmark:
    """State of one benchmark: its config, the results so far, and the caches shared by its runs."""

    def __init__(self, cfg: BenchmarkConfig, accelerator=None):
        from accelerate import Accelerator

        from .distilled_set import DistilledSet

        self.cfg, self.out = cfg, Path(cfg.output_dir)
        self.results_path = self.out / "results.jsonl"
        self.acc = accelerator or Accelerator()
        self.distilled = [DistilledSet.load(name) for name in cfg.distilled]
        sets = {name: fingerprints(d) for name, d in zip(cfg.distilled, self.distilled)}
        sizes = {name: len(d.pixel_values) for name, d in zip(cfg.distilled, self.distilled)}
        check_resumable(cfg, self.out, sets, sizes, main_process=self.acc.is_main_process)
        self.acc.wait_for_everyone()
        if self.acc.is_main_process:
            self.out.mkdir(parents=True, exist_ok=True)
            saved = {**dataclasses.asdict(cfg), "fingerprints": sets}
            (self.out / CONFIG_FILE).write_text(yaml.safe_dump(saved, sort_keys=False))
        self.acc.wait_for_everyone()
        sources = {json.dumps(d.metadata.get("source"), sort_keys=True) for d in self.distilled}
        if len(sources) > 1:
            raise ConfigError("the distilled sets come from different sources; benchmark one source at a time.")
        self.rows = read_results(self.results_path)
        self.done = {run_id(r) for r in self.rows}
        self._source = None
        self._splits = {}

    @property
    def source(self) -> Source:
        if self._source is None:
            self._source = Source(self.distilled[0], self.cfg.teacher, self.acc.device)
        return self._source

    def jobs(self):
        """`(method, distilled set, arch, seed)` in run order; size-free methods once per (arch, seed)."""
        for seed in self.cfg.seeds:
            for arch in self.cfg.archs:
                for name in self.cfg.methods:
                    sets = self.distilled if METHODS[name].per_size else self.distilled[:1]
                    for distilled in sets:
                        yield name, distilled, arch, seed

    def pending(self, name, m, arch, seed) -> list[tuple[str, str]]:
        wanted = [(t.name, p) for t in self.cfg.targets for p in self.cfg.protocols] + [(LABEL_FREE, LABEL_FREE)]
        return [(t, p) for t, p in wanted if run_id(self._row(name, m, arch, seed, t, p)) not in self.done]

    def _row(self, name, m, arch, seed, target, protocol) -> dict:
        return {"method": name, "m": m, "arch": arch, "seed": seed, "target": target, "protocol": protocol}

    def run(self) -> list[dict]:
        from tqdm.auto import tqdm

        jobs = list(self.jobs())
        for name, distilled, arch, seed in tqdm(jobs, desc="benchmark", disable=not self.acc.is_main_process):
            m = len(distilled.pixel_values) if METHODS[name].per_size else None
            pending = self.pending(name, m, arch, seed)
            if not pending:
                continue
            model_dir = self.model(name, distilled, arch, seed)
            for target, protocol in pending:
                row = self._row(name, m, arch, seed, target, protocol)
                if target == LABEL_FREE:
                    row.update(self.label_free(model_dir))
                else:
                    row.update(self.transfer(model_dir, target, protocol, seed))
                self.append(row)
        if self.acc.is_main_process:
            write_report(self.rows, self.cfg, self.out)
        return self.rows

    def append(self, row: dict) -> None:
        self.rows.append(row)
        self.done.add(run_id(row))
        if self.acc.is_main_process:
            self.out.mkdir(parents=True, exist_ok=True)
            with self.results_path.open("a") as f:
                f.write(json.dumps(row) + "\n")

    def model(self, name: str, distilled, arch: str, seed: int) -> Path:
        """The folder of the pre-trained model of this job, trained and saved unless it is already there."""
        from accelerate.utils import set_seed

        from .modeling import learner_config, new_model
        from .pretraining import default_arch, fit, save_pretrained

        method = METHODS[name]
        m = len(distilled.pixel_values)
        size = f"-m{m}" if method.per_size else ""
        folder = self.out / "models" / f"{name}{size}-{arch}-seed{seed}"
        if (folder / "config.json").exists():
            return folder
        data = method.build(self.source, distilled, seed) if method.build else None
        outputs = self.source.teacher.dim if data is None or method.kd else data.num_outputs
        arch_name, options = default_arch(distilled, arch)
        _, channels, side, _ = distilled.pixel_values.shape
        set_seed(seed)
        model = new_model(learner_config(arch_name, channels, side, outputs, **options))
        epochs = self.cfg.full_epochs if name == "full" else self.cfg.pretrain.get("num_epochs", 1000)
        cfg = PretrainConfig(**{**self.cfg.pretrain, "num_epochs": epochs, "seed": seed, "output_dir": str(folder),
                                "distilled": f"{name} (m={m})", "arch": arch})
        history, start = [{"step": 0, "loss": float("nan")}], time.perf_counter()
        if data is not None:
            model.config.problem_type = "single_label_classification" if data.uses_labels else "regression"
            history = fit(model, data, cfg, self.acc, teacher=self.source.teacher if method.kd else None)
        if self.acc.is_main_process:
            stats = {"steps": history[-1]["step"], "final_loss": history[-1]["loss"],
                     "wall_time_s": time.perf_counter() - start,
                     "num_images": 0 if data is None else len(data.pixel_values), "resolution": side,
                     "distilled_metadata": distilled.metadata, "objective": f"`{name}`, {method.help}"}
            save_pretrained(model, folder, cfg, self.source.normalization, stats, history)
        self.acc.wait_for_everyone()
        return folder

    def splits(self, spec: TargetSpec, side: int, channels: int):
        from .transfer import load_splits

        key = (spec.name, side, channels)
        if key not in self._splits:
            self._splits[key] = load_splits(self.transfer_config(spec, "linear", 0, None), side, channels)
        return self._splits[key]

    def transfer_config(self, spec: TargetSpec, protocol: str, seed: int, model_dir) -> TransferConfig:
        overrides = self.cfg.finetune if protocol == "finetune" else self.cfg.linear
        return TransferConfig(
            target=spec.dataset, target_config=spec.config, image_column=spec.image_column,
            label_column=spec.label_column, train_split=spec.train_split, test_split=spec.test_split,
            max_train_samples=spec.max_train_samples, pretrained=None if model_dir is None else str(model_dir),
            protocol=protocol, seed=seed, output_dir=str(self.out / "transfer"), **overrides,
        )

    def transfer(self, model_dir: Path, target: str, protocol: str, seed: int) -> dict:
        from .transfer import run_transfer

        spec = next(t for t in self.cfg.targets if t.name == target)
        _, channels, side, _ = self.distilled[0].pixel_values.shape
        cfg = self.transfer_config(spec, protocol, seed, model_dir)
        result = run_transfer(cfg, self.acc, splits=self.splits(spec, side, channels))
        return {key: result[key] for key in ("accuracy", "num_train", "num_test", "max_steps")}

    def label_free(self, model_dir: Path) -> dict:
        """`r2` of the model's head against the teacher (heads trained on teacher targets) and `probe_r2`."""
        from transformers import AutoModelForImageClassification

        from .metrics import representation_r2
        from .modeling import features
        from .transfer import batched

        images, targets = self.held_out()
        model = AutoModelForImageClassification.from_pretrained(model_dir).to(self.acc.device).eval()
        x = self.source.normalization.normalize(images)
        predicts_teacher = model.config.problem_type == "regression"  # trained on teacher targets
        r2 = representation_r2(batched(lambda v: model(pixel_values=v).logits, x, self.acc.device), targets) \
            if predicts_teacher else None
        probe = ridge_r2(batched(lambda v: features(model, v), x, self.acc.device), targets)
        return {"r2": r2, "probe_r2": probe}

    def held_out(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Held-out source images `(n, C, R, R)` (no labels read) and their teacher representations `(n, d)`."""
        if "held_out" not in self._splits:
            from .data import decode_images, image_column, load_source

            meta = self.distilled[0].metadata
            source = meta["source"]
            ds = load_source(source["id"], source.get("config"), self.cfg.label_free_split, source.get("revision"))
            ds = ds.select(range(min(self.cfg.label_free_images, len(ds))))
            images, _, _ = decode_images(ds, image_column(ds, source.get("image_column")), meta["resolution"],
                                         meta["channels"])
            self._splits["held_out"] = images, self.source.teacher_targets(images)
        return self._splits["held_out"]


def ridge_r2(features: torch.Tensor, targets: torch.Tensor, ridge: float = 1e-3) -> float:
    """R² on the second half of a ridge regression `features (n, p) -> targets (n, d)` fitted on the first half.

    Features are standardised on the fitting half; `ridge` is relative to the mean eigenvalue of the Gram matrix.
    """
    from .metrics import representation_r2

    half = len(features) // 2
    mean, std = features[:half].mean(0), features[:half].std(0).clamp_min(1e-6)
    phi = (features.double() - mean.double()) / std.double()
    phi = torch.cat([phi, torch.ones(len(phi), 1, dtype=phi.dtype)], 1)
    fit, test = phi[:half], phi[half:]
    gram = fit @ fit.T  # (n/2, n/2): cheaper than p x p when p is large
    alpha = torch.linalg.solve(gram + ridge * gram.trace() / len(gram) * torch.eye(len(gram), dtype=gram.dtype),
                               targets[:half].double())
    return representation_r2((test @ fit.T @ alpha).float(), targets[half:])


# ---------------------------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------------------------


LABEL_FREE_COLUMNS = {"r2": "head R²", "probe_r2": "ridge-probe R²"}


def _values(row: dict):
    """`((table, column), value)` pairs of one result row."""
    if row["protocol"] != LABEL_FREE:
        yield (row["protocol"], row["target"]), row["accuracy"]
        return
    for key, column in LABEL_FREE_COLUMNS.items():
        if row.get(key) is not None:
            yield (LABEL_FREE, column), row[key]


def summarise(rows: list[dict]) -> dict:
    """`{(table, column): {(method, m, arch): (mean, std, n)}}` over seeds (std with n - 1; 0 for one seed)."""
    groups: dict = {}
    for row in rows:
        for key, value in _values(row):
            groups.setdefault(key, {}).setdefault((row["method"], row["m"], row["arch"]), []).append(value)
    summary = {}
    for key, methods in groups.items():
        summary[key] = {}
        for method, values in methods.items():
            values = torch.tensor(values, dtype=torch.float64)
            std = float(values.std()) if len(values) > 1 else 0.0
            summary[key][method] = (float(values.mean()), std, len(values))
    return summary


def _label(method, m, arch, archs) -> str:
    text = method if m is None else f"{method} (m={m})"
    return f"{text} [{arch}]" if len(archs) > 1 else text


def write_report(rows: list[dict], cfg: BenchmarkConfig, out: Path) -> None:
    """results.md: one table per protocol (accuracy, %) and one for the label-free score; results.png: the bars."""
    summary = summarise(rows)
    archs = sorted({r["arch"] for r in rows})
    lines = [f"# Benchmark: {', '.join(cfg.distilled)}\n", "Mean ± std over seeds "
             f"{', '.join(map(str, cfg.seeds))}. Methods:\n"]
    lines += [f"- `{name}`: {METHODS[name].help}" for name in cfg.methods]
    tables = [(p, f"{PROTOCOL_TITLES[p]} accuracy (%)", [t.name for t in cfg.targets], 100) for p in cfg.protocols]
    tables.append((LABEL_FREE, "Label-free: R² of the teacher's representations of held-out source images",
                   list(LABEL_FREE_COLUMNS.values()), 1))
    for protocol, title, targets, scale in tables:
        methods = sorted({k for t in targets for k in summary.get((protocol, t), {})}, key=_order(cfg))
        lines += [f"\n## {title}\n", "| method | " + " | ".join(targets) + " |", "|---" * (len(targets) + 1) + "|"]
        for method in methods:
            cells = []
            for target in targets:
                stat = summary.get((protocol, target), {}).get(method)
                digits = 2 if scale == 100 else 3  # accuracy in %, R² as a fraction
                cells.append("" if stat is None else f"{stat[0] * scale:.{digits}f} ± {stat[1] * scale:.{digits}f}")
            lines.append(f"| {_label(*method, archs)} | " + " | ".join(cells) + " |")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    plot(summary, tables, cfg, archs, out / "results.png")


PROTOCOL_TITLES = {"linear": "Linear probe", "finetune": "Fine-tuning"}


def _order(cfg: BenchmarkConfig):
    return lambda key: (cfg.methods.index(key[0]) if key[0] in cfg.methods else 99, key[1] or 0, key[2])


def plot(summary: dict, tables: list, cfg: BenchmarkConfig, archs: list[str], path: Path) -> None:
    """One panel per table: a group of bars per target, one bar per method, error bars of one std."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(tables), figsize=(5 * len(tables) + 2, 4.5), squeeze=False)
    for ax, (protocol, title, targets, scale) in zip(axes[0], tables):
        methods = sorted({k for t in targets for k in summary.get((protocol, t), {})}, key=_order(cfg))
        width = 0.8 / max(len(methods), 1)
        for i, method in enumerate(methods):
            stats = [summary.get((protocol, t), {}).get(method, (math.nan, 0, 0)) for t in targets]
            xs = [j + (i - (len(methods) - 1) / 2) * width for j in range(len(targets))]
            ax.bar(xs, [s[0] * scale for s in stats], width, yerr=[s[1] * scale for s in stats], capsize=2,
                   label=_label(*method, archs))
        ax.set_xticks(range(len(targets)), targets, rotation=15)
        ax.set_title(title if len(title) < 40 else "Label-free R² (held-out source images)", fontsize=10)
        low = min((s[0] - s[1]) * scale for t in targets for s in summary.get((protocol, t), {}).values())
        ax.set_ylim(bottom=max(0.0, low - 0.1 * abs(low)) if low > 0 else low * 1.1)
    axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
