"""Experiment tracking for every training stage, through accelerate's trackers (`--report_to`).

A stage's logs go to `output_dir/runs/` (tensorboard and the other file-based trackers): beside the result, left
out when the folder is pushed. Each stage logs its loss, learning rate and seconds per step, and its hyperparameters
once at the start.

    acc = stage_accelerator(cfg)  # an Accelerator with cfg.report_to's trackers
    start_trackers(acc, cfg, "train-teacher")  # once the inputs are checked: nothing is written for a bad argument
    acc.log({"loss": 0.4, "lr": 1e-3, "step_time_s": 0.2}, step=10)
    finish_trackers(acc)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from .config import trackers


def stage_accelerator(cfg, **kwargs):
    """An `Accelerator` that logs to `cfg.report_to`'s trackers under `cfg.output_dir/runs`; `kwargs` go to the
    `Accelerator` (e.g. `mixed_precision`)."""
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration

    out = Path(cfg.output_dir)
    return Accelerator(
        log_with=trackers(cfg.report_to) or None,
        project_config=ProjectConfiguration(project_dir=str(out), logging_dir=str(out / "runs")),
        **kwargs,
    )


def start_trackers(acc, cfg, stage: str) -> None:
    """Start the trackers of `acc` (tensorboard creates `output_dir/runs/` here) and record `cfg`'s values."""
    acc.init_trackers(f"hf-ssdd-{stage}", config=_flat(dataclasses.asdict(cfg)))


def finish_trackers(acc) -> None:
    """Flush and close the trackers. Not `end_training`, which also ends the process group: that belongs to the
    caller, who may run several stages in one launch (the benchmark does)."""
    for tracker in acc.trackers:
        tracker.finish()


def _flat(config: dict) -> dict:
    """Tracker-friendly hyperparameters: scalars kept, lists and None written as strings."""
    return {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in config.items()}
