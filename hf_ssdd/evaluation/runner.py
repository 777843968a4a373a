"""The `Benchmark`: every (method, set, arch, seed) job pre-trains one model, then scores it on every target and
protocol and label-free; each score is appended to results.jsonl at once (see the package docstring)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from ..config import ConfigError
from ..pretrain_config import PretrainConfig
from ..transfer_config import TransferConfig
from .config import BenchmarkConfig, TargetSpec
from .methods import METHODS, Source, row_help, source_config
from .report import write_report
from .resume import SHARED, check_resumable, fingerprints, readers, save_settings
from .results import LABEL_FREE, read_results, run_id
from .ridge_probe import ridge_r2


class Benchmark:
    """State of one benchmark: its config, the results so far, and the caches shared by its runs."""

    def __init__(self, cfg: BenchmarkConfig, accelerator=None):
        from accelerate import Accelerator

        from ..distilled_set import DistilledSet
        from ..training_sets import load_training_set

        self.cfg, self.out = cfg, Path(cfg.output_dir)
        self.results_path = self.out / "results.jsonl"
        self.acc = accelerator or Accelerator()
        self.distilled = [DistilledSet.load(name) for name in cfg.distilled]
        self.shared = {name: load_training_set(set_id) for name, set_id in cfg.shared.items()}
        sets = {name: fingerprints(d) for name, d in zip(cfg.distilled, self.distilled)}
        sets.update({SHARED + name: {"set": data.fingerprint()} for name, data in self.shared.items()})
        sizes = {name: len(d.pixel_values) for name, d in zip(cfg.distilled, self.distilled)}
        sizes.update({SHARED + name: len(data.pixel_values) for name, data in self.shared.items()})
        rows = {name: readers(d) for name, d in zip(cfg.distilled, self.distilled)}
        check_resumable(cfg, self.out, sets, sizes, rows, main_process=self.acc.is_main_process)
        self.acc.wait_for_everyone()
        if self.acc.is_main_process:
            self.out.mkdir(parents=True, exist_ok=True)
            save_settings(cfg, self.out, sets)
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
        """`(row, method, set, arch, seed)` in run order, each row once per (m, arch, seed): size-free methods once
        per (arch, seed), a method that reads a set once per set (its row names the set's method or start); then
        the shared sets, each its own row."""
        seen = set()
        for seed in self.cfg.seeds:
            for arch in self.cfg.archs:
                for name in self.cfg.methods:
                    method = METHODS[name]
                    for distilled in self.distilled if method.per_size else self.distilled[:1]:
                        row = method.row(name, distilled)
                        key = (row, self.size(name, distilled), arch, seed)
                        if key not in seen:
                            seen.add(key)
                            yield row, name, distilled, arch, seed
                for name, data in self.shared.items():
                    yield name, name, data, arch, seed

    def size(self, name: str, data) -> int | None:
        """The `m` of a job's rows: its set's size, None for methods that do not depend on it."""
        return len(data.pixel_values) if name in self.shared or METHODS[name].per_size else None

    def pending(self, name, m, arch, seed) -> list[tuple[str, str]]:
        wanted = [(t.name, p) for t in self.cfg.targets for p in self.cfg.protocols] + [(LABEL_FREE, LABEL_FREE)]
        return [(t, p) for t, p in wanted if run_id(self._row(name, m, arch, seed, t, p)) not in self.done]

    def _row(self, name, m, arch, seed, target, protocol) -> dict:
        return {"method": name, "m": m, "arch": arch, "seed": seed, "target": target, "protocol": protocol}

    def run(self) -> list[dict]:
        from tqdm.auto import tqdm

        jobs = list(self.jobs())
        for row_name, name, distilled, arch, seed in tqdm(jobs, desc="benchmark",
                                                          disable=not self.acc.is_main_process):
            m = self.size(name, distilled)
            pending = self.pending(row_name, m, arch, seed)
            if not pending:
                continue
            model_dir = self.model(row_name, name, distilled, arch, seed)
            for target, protocol in pending:
                row = self._row(row_name, m, arch, seed, target, protocol)
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

    def model(self, row: str, name: str, distilled, arch: str, seed: int) -> Path:
        """The folder of the pre-trained model of the job of `row` (method `name`), trained and saved unless it is
        already there.

        Every learner sees the source's channels, side and normalisation (a shared set is converted to them); one
        trained on class labels follows the supervised recipe (`PretrainConfig.for_objective`)."""
        from accelerate.utils import set_seed

        from ..modeling import learner_config, new_model
        from ..pretraining import default_arch, fit_learner, save_pretrained

        m, kd = self.size(name, distilled), name in METHODS and METHODS[name].kd
        folder = self.out / "models" / f"{row}{'' if m is None else f'-m{m}'}-{arch}-seed{seed}"
        if (folder / "config.json").exists():
            return folder
        _, channels, side, _ = self.distilled[0].pixel_values.shape
        if name in self.shared:
            data = distilled.to_input(channels, side, self.source.normalization)
            learner, what = self.distilled[0].metadata, self.shared_help(name)
        else:
            method = METHODS[name]
            data = method.build(self.source, distilled, seed) if method.build else None
            learner, what = distilled.metadata, row_help(row)
        outputs = self.source.teacher.dim if data is None or kd else data.num_outputs
        arch_name, options = default_arch(learner, arch)
        set_seed(seed)
        model = new_model(learner_config(arch_name, channels, side, outputs, **options))
        epochs = self.cfg.full_epochs if name == "full" else self.cfg.pretrain.get("num_epochs", 1000)
        cfg = PretrainConfig(**{**self.cfg.pretrain, "num_epochs": epochs, "seed": seed, "output_dir": str(folder),
                                "distilled": f"{row} (m={m})", "arch": arch})
        uses_labels = data is not None and data.uses_labels and not kd
        cfg = cfg.for_objective(uses_labels)
        history, start = [{"step": 0, "loss": float("nan")}], time.perf_counter()
        if data is not None:
            model.config.problem_type = "single_label_classification" if uses_labels else "regression"
            history = fit_learner(model, data, cfg, self.acc, teacher=self.source.teacher if kd else None)
        if self.acc.is_main_process:
            stats = {"steps": history[-1]["step"], "final_loss": history[-1]["loss"],
                     "wall_time_s": time.perf_counter() - start,
                     "num_images": 0 if data is None else len(data.pixel_values), "resolution": side,
                     "distilled_metadata": distilled.metadata, "objective": f"`{row}`, {what}"}
            save_pretrained(model, folder, cfg, self.source.normalization, stats, history)
        self.acc.wait_for_everyone()
        return folder

    def shared_help(self, name: str) -> str:
        """What the shared set `name` is, in the words of the report's list of methods."""
        from ..provenance import public_name

        data = self.shared[name]
        objective = "its class labels (cross-entropy)" if data.uses_labels else "its targets (MSE)"
        name_on_card = public_name(self.cfg.shared[name])
        return f"the shared set `{name_on_card}`: {len(data.pixel_values)} images with {objective}"

    def splits(self, spec: TargetSpec, side: int, channels: int):
        from ..transfer import load_splits

        key = (spec.name, side, channels)
        if key not in self._splits:
            self._splits[key] = load_splits(self.transfer_config(spec, "linear", 0, None), side, channels)
        return self._splits[key]

    def transfer_config(self, spec: TargetSpec, protocol: str, seed: int, model_dir) -> TransferConfig:
        """The run of one target and protocol: `finetune` / `linear` settings, then the target's own, which win."""
        overrides = dict(self.cfg.finetune if protocol == "finetune" else self.cfg.linear)
        if protocol == "finetune" and spec.finetune_steps is not None:
            overrides["max_steps"] = spec.finetune_steps
        return TransferConfig(
            target=spec.dataset, target_config=spec.config, target_revision=spec.revision,
            image_column=spec.image_column, label_column=spec.label_column, train_split=spec.train_split,
            test_split=spec.test_split, max_train_samples=spec.max_train_samples,
            train_fraction=spec.train_fraction,
            pretrained=None if model_dir is None else str(model_dir), protocol=protocol, seed=seed,
            output_dir=str(self.out / "transfer"), **overrides,
        )

    def transfer(self, model_dir: Path, target: str, protocol: str, seed: int) -> dict:
        from ..transfer import run_transfer

        spec = next(t for t in self.cfg.targets if t.name == target)
        _, channels, side, _ = self.distilled[0].pixel_values.shape
        cfg = self.transfer_config(spec, protocol, seed, model_dir)
        result = run_transfer(cfg, self.acc, splits=self.splits(spec, side, channels), before_probe=self.recalibrate)
        return {key: result[key] for key in ("accuracy", "num_train", "num_test", "max_steps")}

    def recalibrate(self, model) -> None:
        """Re-estimate `model`'s BatchNorm statistics on the held-out source images, before a probe reads it (with
        `recalibrate_batch_norm`; else leave it as it was saved)."""
        from ..batch_norm import recalibrate_batch_norm

        if self.cfg.recalibrate_batch_norm:
            recalibrate_batch_norm(model, self.held_out()[0], self.source.normalization, self.acc.device)

    def label_free(self, model_dir: Path) -> dict:
        """`r2` of the model's head against the teacher (heads trained on teacher targets), from the model as it was
        pre-trained, and `probe_r2`, a ridge probe on its features (after `recalibrate`, as every probe)."""
        from transformers import AutoModelForImageClassification

        from ..metrics import representation_r2
        from ..modeling import features
        from ..transfer import batched

        images, targets = self.held_out()
        model = AutoModelForImageClassification.from_pretrained(model_dir).to(self.acc.device).eval()
        normalize = self.source.normalization.normalize  # a chunk at a time: never the whole split in float32
        predicts_teacher = model.config.problem_type == "regression" and len(targets[0]) == model.config.num_labels
        r2 = representation_r2(batched(lambda v: model(pixel_values=normalize(v)).logits, images, self.acc.device),
                               targets) if predicts_teacher else None
        self.recalibrate(model)
        probe = ridge_r2(batched(lambda v: features(model, normalize(v)), images, self.acc.device), targets)
        return {"r2": r2, "probe_r2": probe}

    def held_out(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Held-out source images `(n, C, R, R)` (no labels read) and their teacher representations `(n, d)`."""
        if "held_out" not in self._splits:
            from ..image_store import load_images

            source = source_config(self.distilled[0].metadata, self.cfg.label_free_split, self.cfg.label_free_images)
            images = load_images(source).images
            self._splits["held_out"] = images, self.source.teacher_targets(images)
        return self._splits["held_out"]
