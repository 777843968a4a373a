"""`DistillConfig`: the options every distillation method shares. Each method's config subclasses it (its own
hyperparameters, and its own defaults for the shared ones, e.g. `max_steps`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import CheckpointConfig, ConfigError, SourceConfig, check_positive, report_to_field, trackers
from ..provenance import HUB_LICENSES
from . import DEFAULT_METHOD, METHODS, owner_of

INITS = ("random", "high_loss")


@dataclass
class DistillConfig(CheckpointConfig, SourceConfig):
    """Distil an unlabeled source into `num_synthetic` images and learnable target representations: the options of
    every method (a method's own config adds its hyperparameters)."""

    method: str = field(
        default=DEFAULT_METHOD,
        metadata={"help": "Distillation method: " + "; ".join(f"{k}: {m.help}" for k, m in METHODS.items()),
                  "choices": tuple(METHODS)},
    )
    teacher: str | None = field(
        default=None,
        metadata={"help": "Teacher: transformers vision encoder, Hub id or local path (e.g. from train-teacher)."},
    )
    teacher_revision: str | None = field(default=None, metadata={"help": "Git revision of the Hub teacher."})
    teacher_pooling: str = field(
        default="auto",
        metadata={"help": "How the teacher gives one vector.", "choices": ("auto", "cls", "pooler", "mean")},
    )
    output_dir: str = field(
        default="distilled", metadata={"role": "output", "help": "Folder of the distilled Hub dataset."}
    )
    overwrite_output_dir: bool = field(
        default=False, metadata={"role": "output", "help": "Allow writing into a non-empty output_dir."}
    )
    num_synthetic: int = field(default=1000, metadata={"help": "Number m of synthetic images."})
    init: str = field(
        default="random",
        metadata={"choices": INITS,
                  "help": "The real images the synthetic set starts from: random, or high_loss (the m with the "
                          "highest MSE under the experts of --trajectories at epoch 1, averaged over experts: "
                          "MKDT's choice)."},
    )
    trajectories: str | None = field(
        default=None,
        metadata={"help": "Expert trajectories (folder or Hub model repo from `hf-ssdd trajectories`), for "
                          "--init high_loss and for trajectory matching."},
    )
    trajectories_revision: str | None = field(default=None, metadata={"help": "Git revision of Hub trajectories."})
    max_steps: int = field(default=160_000, metadata={"role": "run", "help": "Outer (distillation) steps."})
    teacher_cache_dir: str | None = field(
        default=None,
        metadata={"role": "output",
                  "help": "Folder of teacher-view caches; default: $HF_SSDD_CACHE or $HF_HOME/hf_ssdd."},
    )
    max_memory_gb: float | None = field(
        default=None,
        metadata={"role": "run", "help": "Memory the run may use on its device; default: 90% of what is free."},
    )
    seed: int = field(default=0, metadata={"help": "Seed of every random choice of the run."})
    logging_steps: int = field(
        default=10, metadata={"role": "run", "help": "Log loss and learning rate every N steps."}
    )
    report_to: str = report_to_field()
    push_to_hub: str | None = field(
        default=None, metadata={"role": "output", "help": "Hub dataset repo id to upload the result to."}
    )
    private: bool = field(default=False, metadata={"role": "output", "help": "Create the Hub repo as private."})
    license: str | None = field(
        default=None,
        metadata={"role": "output",
                  "help": "Licence of the distilled set in its card, a Hub licence id (mit, cc-by-4.0, ...); when "
                          "given it wins over the licence of the source dataset's card. Default: the source's "
                          "licence, else unknown."},
    )

    def __post_init__(self):
        super().__post_init__()
        if self.method != self.method_name():
            raise ConfigError(f"method={self.method!r}: {type(self).__name__} configures {self.method_name()!r}; "
                              f"build the config class of {self.method!r} (methods.config_class).")
        trackers(self.report_to)
        if self.license is not None and self.license not in HUB_LICENSES:
            raise ConfigError(
                f"license={self.license!r} is not a Hub licence id; use one such as mit, apache-2.0, cc-by-4.0 or "
                "other (the list: https://huggingface.co/docs/hub/repositories-licenses)."
            )
        check_positive(self, "num_synthetic", "max_steps", "max_memory_gb", "save_steps", "logging_steps",
                       "save_total_limit")
        if self.init == "high_loss" and not self.trajectories:
            raise ConfigError("init='high_loss' ranks images by the experts' loss: pass --trajectories (a folder "
                              "from `hf-ssdd trajectories`) or use --init random.")

    @classmethod
    def method_name(cls) -> str:
        """The method this config class configures (the default of its `method` field)."""
        return cls.__dataclass_fields__["method"].default

    @classmethod
    def misplaced(cls, option: str) -> str | None:
        """Why `option` is not an option here when it is one of another method, else None."""
        own = cls.method_name()
        others = [name for name in owner_of(option) if name != own]
        if not others:
            return None
        return (f"--{option} is an option of --method {' and '.join(others)}, not of --method {own}; drop it or "
                f"choose --method {others[0]}.")


def method_of(argv: list[str]) -> str:
    """The `--method` of a command line, else the `method` key of its `--config` YAML file, else the default."""
    import argparse
    from pathlib import Path

    import yaml

    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)  # a missing value is the real parser's error
    pre.add_argument("--method", nargs="?")
    pre.add_argument("--config", nargs="?")
    known, _ = pre.parse_known_args(argv)
    if known.method:
        return known.method
    if known.config and Path(known.config).is_file():
        values = yaml.safe_load(Path(known.config).read_text())
        if isinstance(values, dict) and values.get("method"):
            return str(values["method"])
    return DEFAULT_METHOD
