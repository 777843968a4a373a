"""Crash-safe writes: every file and folder hf-ssdd produces is written under a temporary name and renamed into
place, so a reader (or a resumed run) finds the old version or the new one, never half of one."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path


def write_file(path: Path, write: Callable[[Path], object]) -> None:
    """`write(temporary path)`, then rename it over `path`."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_folder(path: Path, fill: Callable[[Path], object], sync: bool = False) -> Path:
    """`fill(temporary folder)`, then replace `path` by it; with `sync`, files reach the disk before the rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        fill(tmp)
        if sync:
            for f in tmp.iterdir():
                with open(f, "rb") as handle:
                    os.fsync(handle.fileno())
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path
