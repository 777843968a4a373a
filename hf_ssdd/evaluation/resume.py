"""Resuming a benchmark: what its results depend on (settings, the sets' fingerprints) and when they may be reused.

`output_dir/benchmark_config.yaml` holds the config a benchmark was started with and the fingerprints of its sets;
a rerun compares against it, so the saved form (plain dicts, these keys) may only grow: a key a version adds is
read, in a file saved before, as the value that benchmark ran with (`SAVED_BEFORE_THE_KEY`, new `TargetSpec` fields'
defaults).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import yaml

from ..atomic import write_file
from ..provenance import public_name
from ..config import ConfigError, check_output_dir
from ..pretrain_config import OBJECTIVE_RECIPES, PretrainConfig
from ..transfer_config import TransferConfig
from .config import BenchmarkConfig, TargetSpec
from .methods import METHODS, start_of
from .results import read_results

CONFIG_FILE = "benchmark_config.yaml"
SETTINGS = ("teacher", "pretrain", "finetune", "linear", "full_epochs", "label_free_split", "label_free_images",
            "recalibrate_batch_norm", "labels_recipe")
# settings that some methods alone read (and the shared sets, for labels_recipe): a change matters once they have run
READ_BY_SOME_METHODS = {"full_epochs": ("full",), "labels_recipe": ("random", "kmeans")}
SHARED = "shared:"  # prefix of a shared set's name among the fingerprints
# Transfer settings added since benchmarks were first saved, with the value those older benchmarks ran with: a saved
# file without the key holds it, so a config that pins that value resumes them. New files hold every key resolved.
SAVED_BEFORE_THE_KEY = {"finetune": {"crop_fill": "mean", "target_normalization": "source"},
                        "linear": {"target_normalization": "source"}}
TOP_LEVEL_SAVED_BEFORE = {"recalibrate_batch_norm": False}  # the same, for top-level settings


def settings(cfg: BenchmarkConfig) -> dict:
    """The config as it is saved and compared: `dataclasses.asdict`, with the `SAVED_BEFORE_THE_KEY` settings of
    `finetune` / `linear` resolved (the value given, else `TransferConfig`'s default), and `labels_recipe`, how the
    sets with class labels are pre-trained (`pretrain`'s values, else the recipe of that objective)."""
    saved = dataclasses.asdict(cfg)
    defaults = {f.name: f.default for f in dataclasses.fields(TransferConfig)}
    for protocol, keys in SAVED_BEFORE_THE_KEY.items():
        saved[protocol] = {**{key: defaults[key] for key in keys}, **saved[protocol]}
    recipe = PretrainConfig(**cfg.pretrain).for_objective(uses_labels=True)
    saved["labels_recipe"] = {key: getattr(recipe, key) for key in OBJECTIVE_RECIPES["labels"]}
    return saved


def _as_saved_before(saved: dict) -> dict:
    """A saved config with the settings its version did not write filled in with the values it ran with (before
    `labels_recipe`, labels trained as targets: `pretrain`'s learning rate and weight decay, or 0.1 and 1e-3)."""
    filled = {protocol: {**keys, **saved.get(protocol, {})} for protocol, keys in SAVED_BEFORE_THE_KEY.items()}
    targets = [dataclasses.asdict(TargetSpec(**t)) for t in saved.get("targets", [])]  # new fields: their defaults
    pretrain = saved.get("pretrain", {})
    labels_recipe = {"learning_rate": pretrain.get("learning_rate", 0.1), "lr_drop": 1.0, "dsa": False,
                     "weight_decay": pretrain.get("weight_decay", 1e-3)}
    return {**TOP_LEVEL_SAVED_BEFORE, "labels_recipe": labels_recipe, **saved, **filled, "targets": targets}


def fingerprints(distilled) -> dict[str, str]:
    """What the runs of a set depend on: its tensors (`set`) and its starting images (`init`)."""
    hyper = distilled.metadata.get("hyperparameters", {})
    start = f"seed={hyper.get('seed')},m={len(distilled.pixel_values)},max_samples={hyper.get('max_samples')}"
    if start_of(distilled) != "random":
        start += f",init={start_of(distilled)},trajectories={public_name(hyper.get('trajectories'))}"
    return {"set": distilled.fingerprint(), "init": start}


def save_settings(cfg: BenchmarkConfig, out: Path, sets: dict[str, dict]) -> None:
    """Write the config and the sets' fingerprints that a later run of this benchmark is checked against."""
    saved = {**settings(cfg), "fingerprints": sets}
    (out / CONFIG_FILE).write_text(yaml.safe_dump(saved, sort_keys=False))


def readers(distilled) -> dict[str, list[str]]:
    """The rows that read each part of a set (`fingerprints`' keys): `{"set": ["krr_st", "kd_krr_st"], ...}`."""
    rows = {}
    for name, method in METHODS.items():
        if method.reads is not None:
            rows.setdefault(method.reads, []).append(method.row(name, distilled))
    return rows


def forget(out: Path, m: int, methods: set[str]) -> None:
    """Drop the results and models of size `m` of the rows `methods`."""
    rows = [r for r in read_results(out / "results.jsonl") if not (r["method"] in methods and r["m"] == m)]
    write_file(out / "results.jsonl", lambda path: path.write_text("".join(json.dumps(r) + "\n" for r in rows)))
    for name in methods:
        for folder in (out / "models").glob(f"{name}-m{m}-*"):
            shutil.rmtree(folder)


def check_resumable(cfg: BenchmarkConfig, out: Path, sets: dict[str, dict], sizes: dict[str, int],
                    rows: dict[str, dict] | None = None, main_process: bool = True) -> None:
    """Results in `out` may be resumed or extended (more seeds, methods, targets) only under the same settings and
    with the same distilled sets; with `rerun_changed_sets`, the runs that read a changed set are dropped instead
    (`rows[name]`: the rows that read each part of set `name`, from `readers`).
    A setting that some methods alone read (`READ_BY_SOME_METHODS`) may change as long as they have not run."""
    if not out.exists() or not any(out.iterdir()):
        return
    if not (out / CONFIG_FILE).exists():
        check_output_dir(str(out), overwrite=False)  # a folder that is not a benchmark's: refuse, with its message
        return
    saved = _as_saved_before(yaml.safe_load((out / CONFIG_FILE).read_text()))
    current = settings(cfg)
    readers = {**READ_BY_SOME_METHODS, "labels_recipe": (*READ_BY_SOME_METHODS["labels_recipe"], *cfg.shared)}
    differ = [key for key in SETTINGS if saved.get(key) != current[key]
              and (key not in readers or any(has_run(out, method) for method in readers[key]))]
    saved_targets = {t["name"]: t for t in saved.get("targets", [])}
    differ += [f"targets[{t['name']}]" for t in current["targets"] if saved_targets.get(t["name"], t) != t]
    saved_sets = saved.get("fingerprints", {})
    for name, parts in sets.items():
        before = saved_sets.get(name, parts)
        before = {"set": before} if isinstance(before, str) else before
        changed = {key for key, value in parts.items() if before.get(key, value) != value}
        if changed and cfg.rerun_changed_sets:
            if main_process:
                reading = {row for part in changed for row in (rows or {}).get(name, {}).get(part, [])}
                forget(out, sizes[name], {name.removeprefix(SHARED)} if name.startswith(SHARED) else reading)
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
