"""Checkpoints that survive crashes: a nested state dict split into `state.safetensors` (every tensor) and
`state.json` (everything else, with tensor placeholders), written into a temporary folder and renamed into place.

    OUTPUT_DIR/
    └── checkpoint-N/
        ├── state.safetensors   distill: synthetic images and targets, Adam moments, every pool model and its
        │                       SGD momentum; train-teacher, pretrain: the model and its optimiser's state
        └── state.json          step, loss history, pool step counts, scheduler, optimiser hyperparameters,
                                RNG state, resolved config

No pickle (`accelerate`'s `save_state` writes one, and is not atomic): a checkpoint is tensors and JSON, so reading
one runs no code. `distill` (in its own loop), `train-teacher` and `pretrain` (in `training_loop.run_steps`) all
write and resume through `Checkpoints`.

A folder that is not complete (no `state.json`, unreadable tensors) is never renamed to `checkpoint-N`, and is
reported as corrupt if met anyway.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import signal
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .config import ConfigError, check_compatible

TENSOR_KEY = "__tensor__"
TUPLE_KEY = "__tuple__"
CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")


def flatten(obj: Any, tensors: dict[str, torch.Tensor], prefix: str = "") -> Any:
    """Move every tensor of a nested structure into `tensors` and leave `{"__tensor__": name}` in its place."""
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach().cpu().contiguous()
        return {TENSOR_KEY: prefix}
    if isinstance(obj, dict):
        if not all(isinstance(k, (str, int)) for k in obj):
            raise TypeError(f"cannot checkpoint dict keys {list(obj)[:3]} at {prefix!r}")
        # JSON keys are strings: remember which were ints (optimiser states are keyed by parameter index).
        return {"__dict__": [[k, flatten(v, tensors, f"{prefix}.{k}")] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {TUPLE_KEY: [flatten(v, tensors, f"{prefix}.{i}") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [flatten(v, tensors, f"{prefix}.{i}") for i, v in enumerate(obj)]
    return obj


def unflatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of `flatten`."""
    if isinstance(obj, dict):
        if TENSOR_KEY in obj:
            return tensors[obj[TENSOR_KEY]]
        if TUPLE_KEY in obj:
            return tuple(unflatten(v, tensors) for v in obj[TUPLE_KEY])
        return {k: unflatten(v, tensors) for k, v in obj["__dict__"]}
    if isinstance(obj, list):
        return [unflatten(v, tensors) for v in obj]
    return obj


def save_checkpoint(state: dict, path: str | Path) -> Path:
    """Write `state` to `path` atomically: into `path.tmp`, then one rename. Returns `path`."""
    from safetensors.torch import save_file

    from .atomic import write_folder

    tensors: dict[str, torch.Tensor] = {}
    skeleton = flatten(state, tensors)

    def fill(folder: Path) -> None:
        # safetensors refuses tensors that share memory; checkpoints are small next to the data, so copy.
        save_file({k: v.clone() for k, v in tensors.items()}, folder / "state.safetensors")
        (folder / "state.json").write_text(json.dumps(skeleton))

    return write_folder(Path(path), fill, sync=True)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by `save_checkpoint`; a missing or damaged one is a one-line `ConfigError`."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_dir():
        raise ConfigError(f"checkpoint {str(path)!r} does not exist; pass a checkpoint-N folder or 'latest'.")
    try:
        skeleton = json.loads((path / "state.json").read_text())
        tensors = load_file(path / "state.safetensors", device=str(map_location))
        return unflatten(skeleton, tensors)
    except (OSError, json.JSONDecodeError, SafetensorError, KeyError) as err:
        raise ConfigError(
            f"checkpoint {str(path)!r} is incomplete or corrupt ({type(err).__name__}: {err}); "
            "resume from an earlier checkpoint or start afresh."
        ) from err


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete `checkpoint-N` folders of `output_dir`, oldest first."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in output_dir.iterdir() if (m := CHECKPOINT_PATTERN.match(p.name))]
    return [p for _, p in sorted(found)]


def resolve_checkpoint(spec: str, output_dir: str | Path) -> Path:
    """`'latest'` -> newest checkpoint in `output_dir`; anything else is a path."""
    if spec != "latest":
        return Path(spec)
    checkpoints = list_checkpoints(output_dir)
    if not checkpoints:
        raise ConfigError(f"resume_from_checkpoint='latest' but {str(output_dir)!r} has no checkpoint-N folder.")
    return checkpoints[-1]


def rotate_checkpoints(output_dir: str | Path, keep: int | None) -> None:
    """Delete all but the newest `keep` checkpoints (`None`: keep all)."""
    if keep is None:
        return
    found = list_checkpoints(output_dir)
    for old in found[: max(0, len(found) - keep)]:  # not found[:-keep]: keep=0 would delete none
        shutil.rmtree(old)


@contextmanager
def stop_requests():
    """Turn SIGINT / SIGTERM into a flag that the loop checks after each step (so it can checkpoint first)."""
    requested = []
    handler = lambda signum, frame: requested.append(signum)  # noqa: E731
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield requested
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@dataclass
class Checkpoints:
    """Where a run of `training_loop.run_steps` checkpoints (`output_dir/checkpoint-N/` every `save_steps` steps, the
    newest `keep`) and the state it resumes from (`resumed`).

    `Checkpoints.of(cfg)` reads `cfg.resume_from_checkpoint` (a folder, or `latest` in `cfg.output_dir`) before any
    work is done, and refuses a checkpoint whose config differs in a hyperparameter (`config.check_compatible`)."""

    output_dir: Path
    save_steps: int
    keep: int | None
    config: dict  # the run's config as given, saved in each checkpoint and checked on resume
    resumed: dict | None = None

    @classmethod
    def of(cls, cfg) -> Checkpoints:
        """The checkpoints of the run `cfg` (a `config.CheckpointConfig` with an `output_dir`)."""
        resume = resolve_checkpoint(cfg.resume_from_checkpoint, cfg.output_dir) if cfg.resume_from_checkpoint else None
        state = load_checkpoint(resume) if resume else None
        if state is not None:
            check_compatible(cfg, state["config"], f"checkpoint {str(resume)!r}")
        return cls(Path(cfg.output_dir), cfg.save_steps, cfg.save_total_limit, dataclasses.asdict(cfg), state)

    def begin(self, accelerator) -> None:
        """A fresh run drops the checkpoints an older run left in output_dir (`--overwrite_output_dir`), so that
        `latest` never names another run's."""
        if self.resumed is None and accelerator.is_main_process:
            rotate_checkpoints(self.output_dir, keep=0)
        accelerator.wait_for_everyone()

    def save(self, state: dict, step: int, accelerator) -> None:
        """`checkpoint-<step>/` with `state` and the config, written by the main process, then old ones rotated out;
        every process waits for it."""
        if accelerator.is_main_process:
            save_checkpoint({**state, "config": self.config}, self.output_dir / f"checkpoint-{step}")
            rotate_checkpoints(self.output_dir, self.keep)
        accelerator.wait_for_everyone()

    def last(self) -> str:
        """The newest checkpoint's folder, for a message; `none` before the first."""
        found = list_checkpoints(self.output_dir)
        return str(found[-1]) if found else "none"
