"""`BenchmarkConfig`: what a benchmark compares, read from YAML and `--key value` overrides, every value type-checked.

The file goes through `parsing.load_yaml` like every other stage's (unknown keys, nulls and lists are errors); then
every value, those of the overrides and those inside `targets`, `pretrain`, `finetune` and `linear` included, is
checked against its field's type, so a mistake is one `ConfigError` naming it before any run starts.
`pretrain`, `finetune` and `linear` stay plain dicts of the keys given (they are saved so, and a resumed benchmark
compares them so); their keys are the fields of `PretrainConfig` / `TransferConfig` the benchmark does not set itself.
"""

from __future__ import annotations

import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from ..config import ConfigError, check_few_labels
from ..parsing import load_yaml
from ..pretrain_config import PretrainConfig
from ..transfer_config import TransferConfig
from .methods import METHODS
from .presets import PRESETS

PROTOCOLS = ("linear", "finetune")
SET_BY_BENCHMARK = {  # fields of the nested configs that each run sets itself: giving them is a mistake
    PretrainConfig: ("distilled", "distilled_revision", "image_column", "label_column", "arch", "channels",
                     "resolution", "seed", "output_dir"),
    TransferConfig: ("target", "target_config", "target_revision", "image_column", "label_column", "train_split",
                     "test_split", "max_train_samples", "train_fraction", "pretrained", "protocol", "seed",
                     "output_dir"),
}


@dataclass
class TargetSpec:
    """One transfer target: a labelled dataset, how many of its training labels the learner may see (a count, or a
    fraction as MKDT's 1% and 5%), and how long it is fine-tuned (the paper: 10,000 steps for CIFAR-size targets,
    5,000 for the fine-grained ones)."""

    dataset: str
    name: str | None = None  # column title in the tables; default: dataset (and its label count)
    max_train_samples: int | None = None
    train_fraction: float | None = None  # of the training images, e.g. 0.01; not with max_train_samples
    config: str | None = None
    revision: str | None = None  # git revision of a Hub dataset
    train_split: str = "train"
    test_split: str | None = "test"
    image_column: str | None = None
    label_column: str | None = None
    finetune_steps: int | None = None  # fine-tuning steps on this target; default: finetune.max_steps

    def __post_init__(self):
        if self.finetune_steps is not None and self.finetune_steps <= 0:
            raise ConfigError(f"finetune_steps={self.finetune_steps} of target {self.dataset!r} must be positive.")
        check_few_labels(self.max_train_samples, self.train_fraction, f"target {self.dataset!r}: ")
        if self.name is None:
            few = self.max_train_samples or (f"{self.train_fraction:.0%}" if self.train_fraction else None)
            self.name = f"{self.dataset}-{few}" if few else self.dataset


@dataclass
class BenchmarkConfig:
    """What to compare (methods, distilled sets), on what (targets, protocols), how often (seeds)."""

    distilled: list[str]  # distilled sets (folders or Hub ids); their sizes m are the sizes of every baseline
    targets: list[TargetSpec]
    teacher: str | None = None  # teacher of the baselines' targets; default: the one recorded in the set's card
    output_dir: str = "benchmark"
    preset: str = "hf_ssdd"  # whose protocol: defaults of `pretrain` and `linear` (see presets.py)
    methods: list[str] = field(default_factory=lambda: ["scratch", "init", "random", "kmeans", "distilled"])
    # sets made elsewhere, {row name: folder or Hub id}, with a float `target` or a class label column (see
    # training_sets.py): each is pre-trained like `distilled` (labels: the supervised recipe) and is a row of its own
    shared: dict = field(default_factory=dict)
    protocols: list[str] = field(default_factory=lambda: list(PROTOCOLS))
    archs: list[str] = field(default_factory=lambda: ["convnet"])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    pretrain: dict = field(default_factory=dict)  # PretrainConfig fields
    finetune: dict = field(default_factory=dict)  # TransferConfig fields for protocol finetune
    linear: dict = field(default_factory=dict)  # TransferConfig fields for protocol linear
    full_epochs: int = 1  # epochs of the `full` method over the whole source
    label_free_split: str = "test"  # held-out source split of the label-free score
    label_free_images: int = 2000
    # re-estimate every network's BatchNorm statistics on the label-free images before any probe (see batch_norm.py)
    recalibrate_batch_norm: bool = True
    rerun_changed_sets: bool = False  # a set distilled anew: redo the runs that read it, keep the others

    def __post_init__(self):
        self.targets = [t if isinstance(t, TargetSpec) else TargetSpec(**t) for t in self.targets]
        if self.preset not in PRESETS:
            raise ConfigError(f"preset={self.preset!r} is unknown; choose from {', '.join(PRESETS)}.")
        self.pretrain = {**PRESETS[self.preset].pretrain, **self.pretrain}
        self.linear = {**PRESETS[self.preset].linear, **self.linear}
        if not self.distilled:
            raise ConfigError("distilled: give at least one distilled set (folder or Hub id).")
        unknown = sorted(set(self.methods) - set(METHODS))
        if unknown:
            raise ConfigError(f"methods {unknown} are unknown; choose from {', '.join(METHODS)}.")
        bad = sorted(set(self.protocols) - set(PROTOCOLS))
        if bad:
            raise ConfigError(f"protocols {bad} are unknown; choose from {', '.join(PROTOCOLS)}.")
        for name, set_id in self.shared.items():
            if not isinstance(name, str) or not re.fullmatch(r"[\w.-]+", name) or name in METHODS:
                raise ConfigError(f"shared: {name!r} cannot name a row; give a name of letters, digits, '-', '_' or "
                                  f"'.' that is not a method ({', '.join(METHODS)}).")
            if not isinstance(set_id, str):
                raise ConfigError(f"shared: {name}: {set_id!r} is not a folder or Hub id.")
        names = [t.name for t in self.targets]
        if len(set(names)) != len(names):
            raise ConfigError(f"target names {names} repeat; give each target a distinct `name`.")

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: dict | None = None) -> BenchmarkConfig:
        """Read a YAML file; `overrides` (top-level keys, e.g. from the command line) win. Unknown keys and values of
        the wrong type, in the file or in the overrides, are `ConfigError`s naming where they are."""
        values = load_yaml(path, cls)
        check_values(values, cls, f"in {path}")
        check_values(overrides or {}, cls, "on the command line", prefix="--")
        try:
            return cls(**{**values, **(overrides or {})})
        except TypeError as err:
            raise ConfigError(f"{path}: {err}") from None


NESTED = {"targets": TargetSpec, "pretrain": PretrainConfig, "finetune": TransferConfig, "linear": TransferConfig}


def check_values(values: dict, config_cls: type, where: str, prefix: str = "") -> None:
    """Refuse a key `config_cls` does not have and a value its field's type cannot take; recurse into `NESTED`
    fields (`prefix` spells the key as the user wrote it: `--seeds`, `pretrain.num_epochs`)."""
    if not isinstance(values, dict):
        raise ConfigError(f"{prefix.rstrip('.')}={values!r} {where} must be a mapping of key: value.")
    hints = typing.get_type_hints(config_cls)
    settable = [name for name in hints if name not in SET_BY_BENCHMARK.get(config_cls, ())]
    for key, value in values.items():
        if key in SET_BY_BENCHMARK.get(config_cls, ()):
            raise ConfigError(f"{prefix}{key} {where} is set by the benchmark for each run; leave it out.")
        if key not in settable:
            raise ConfigError(f"unknown key {prefix}{key} {where}; valid keys: {', '.join(sorted(settable))}.")
        nested = NESTED.get(key) if config_cls is BenchmarkConfig else None
        if nested is TargetSpec and isinstance(value, list):
            for i, target in enumerate(value):
                check_values(target, TargetSpec, where, f"{prefix}{key}[{i}].")
        elif nested is not None and isinstance(value, dict):
            check_values(value, nested, where, f"{prefix}{key}.")
        elif not _fits(value, hints[key]):
            kind = _name(hints[key])
            raise ConfigError(f"{prefix}{key}={value!r} {where} is not of type {kind}; give one of that type.")


def _fits(value, hint) -> bool:
    """Whether a YAML value can be a field of type `hint`: `int`, `float` (an int too), `str`, `bool`, `list[...]`,
    `... | None`, `dict`."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, arg) for arg in args)
    if origin is list:
        return isinstance(value, list) and all(_fits(v, args[0]) for v in value)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, origin or hint)


def _name(hint) -> str:
    """`list[int]` -> "list[int]", `int | None` -> "int or null", `str` -> "str"."""
    text = getattr(hint, "__name__", None) if typing.get_origin(hint) is None else str(hint)
    text = (text or str(hint)).replace("typing.", "").replace("NoneType", "None").replace(" | None", " or null")
    return re.sub(r"[\w.]+\.(\w+)", r"\1", text)  # list[hf_ssdd.evaluation.config.TargetSpec] -> list[TargetSpec]
