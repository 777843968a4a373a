"""Checkpoints that survive crashes: a nested state dict split into `state.safetensors` (every tensor) and
`state.json` (everything else, with tensor placeholders), written into a temporary folder and renamed into place.

    OUTPUT_DIR/
    └── checkpoint-N/
        ├── state.safetensors   synthetic images and targets, Adam moments, every pool model and its SGD momentum
        └── state.json          step, loss history, pool step counts, scheduler, optimiser hyperparameters,
                                RNG state, resolved config

A folder that is not complete (no `state.json`, unreadable tensors) is never renamed to `checkpoint-N`, and is
reported as corrupt if met anyway.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from .config import ConfigError

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
    for old in list_checkpoints(output_dir)[:-keep]:
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
