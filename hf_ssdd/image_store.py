"""A source's images decoded once per node into one uint8 file that every process maps: `load_images`.

ImageNet 64x64 is 1.28 M images, 15.7 GB as uint8. Decoded image by image into each process's own tensor, that is
minutes of one core per process and 15.7 GB of memory per process (126 GB for 8 GPUs). Here:
- Encoded images (PNG, JPEG: an `Image` column) are decoded once, by a pool of worker processes, into
  `<cache>/<key>.npy` `(N, C, R, R)` uint8, written under a temporary name and renamed into place. One process per
  node writes it (a file lock; the others wait on it), and a truncated file or one whose sidecar `<key>.json` names
  other inputs is rebuilt. `<key>` hashes the dataset's fingerprint (its files, split and rows), its split and
  column, the shape `(N, C, R, R)` and Pillow's version.
- Already-decoded arrays (`Array2D` / `Array3D`, one Arrow chunk, at their own resolution and channels) are viewed
  in Arrow's memory directly: nothing is written. Other arrays are converted into the same kind of file.
Every process maps the file copy-on-write (nothing writes to it), so the pages live in the page cache, shared, and
a process's anonymous memory does not grow with the source. The pixels are bitwise those of decoding one PIL image
at a time (`decode_images`, which targets still use: they are small).

The cache folder: `$HF_SSDD_IMAGE_CACHE`, else `hf_ssdd_images` under the `datasets` cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import data
from .atomic import write_file
from .config import ConfigError, SourceConfig

STORE_VERSION = 1  # part of every key: bump it when the decoded pixels of a given input change
CHUNK = 1000  # rows a worker decodes per task (~12 MB of 64x64 RGB), and rows of arrays converted at a time


@dataclass
class SourceImages:
    """The images of a source, decoded once: `images` uint8 `(N, C, R, R)`, and where they came from.

    `images` is usually a read-only mapping (of the cache file or of Arrow's memory): index it for batches, never
    write into it."""

    images: torch.Tensor
    resolution: int
    channels: int
    column: str  # the image column read
    num_rows: int  # rows of the split after `max_samples`: N, or more when only the first rows were decoded


def load_images(
    source: SourceConfig, split: str | None = None, rows: int | None = None, cache_dir: str | Path | None = None
) -> SourceImages:
    """The images of `source`'s split (or `split`), its first `max_samples`, at its `resolution` and `channels` (the
    data's own where not given); `rows` reads only the first rows (e.g. 1, to learn the format of a large source)."""
    ds = data.load_source(source.dataset, source.dataset_config, split or source.split, source.dataset_revision)
    num_rows = min(len(ds), source.max_samples or len(ds))
    column = data.image_column(ds, source.image_column)
    ds = ds.select(range(min(rows or num_rows, num_rows)))
    resolution, channels = image_format(ds, column, source.resolution, source.channels)
    images = arrow_view(ds, column, resolution, channels)
    if images is None:
        images = open_store(ds, column, resolution, channels, cache_dir)
    return SourceImages(images, resolution, channels, column, num_rows)


def default_cache_dir() -> Path:
    """`$HF_SSDD_IMAGE_CACHE`, else `hf_ssdd_images` under the `datasets` cache (`$HF_DATASETS_CACHE`)."""
    import datasets

    return Path(os.environ.get("HF_SSDD_IMAGE_CACHE") or Path(datasets.config.HF_DATASETS_CACHE) / "hf_ssdd_images")


def image_format(ds, column: str, resolution: int | None, channels: int | None) -> tuple[int, int]:
    """(resolution, channels): the given ones, else those of the first image."""
    if len(ds) == 0:
        raise ConfigError("the dataset has no rows.")
    native_r, native_c = _native_format(ds[0][column], resolution)
    return resolution or native_r, channels or native_c


# ---------------------------------------------------------------------------------------------------------------------
# The cache file
# ---------------------------------------------------------------------------------------------------------------------


def store_key(ds, column: str, resolution: int, channels: int) -> dict:
    """Everything the decoded pixels depend on. The fingerprint covers the dataset's files, split and row selection."""
    import PIL

    shape = [len(ds), channels, resolution, resolution]
    return {"fingerprint": ds._fingerprint, "split": str(ds.split), "column": column, "shape": shape,
            "pillow": PIL.__version__, "version": STORE_VERSION}


def open_store(ds, column: str, resolution: int, channels: int, cache_dir: str | Path | None = None) -> torch.Tensor:
    """The images of `ds[column]` as uint8 `(N, C, R, R)` mapped from the cache file, decoding them first if no
    process has (one process per node decodes, under a file lock; the others wait on it, then map its file)."""
    from filelock import FileLock

    key = store_key(ds, column, resolution, channels)
    name = hashlib.blake2b(json.dumps(key, sort_keys=True).encode(), digest_size=12).hexdigest()
    folder = Path(cache_dir or default_cache_dir())
    folder.mkdir(parents=True, exist_ok=True)
    path, meta = folder / f"{name}.npy", folder / f"{name}.json"
    with FileLock(str(folder / f"{name}.lock")):
        images = _mapped(path, meta, key)
        if images is None:
            meta.unlink(missing_ok=True)  # a stale sidecar must not vouch for the new file before it is complete
            write_file(path, lambda tmp: _build(tmp, ds, column, resolution, channels))
            write_file(meta, lambda tmp: tmp.write_text(json.dumps(key, indent=2) + "\n"))
            images = _mapped(path, meta, key)
    return images


def _mapped(path: Path, meta: Path, key: dict) -> torch.Tensor | None:
    """The file's images, mapped copy-on-write; None if it is missing, truncated, or its sidecar names other inputs."""
    if not (path.exists() and meta.exists()) or json.loads(meta.read_text()) != key:
        return None
    try:
        array = np.load(path, mmap_mode="c")  # private mapping: clean pages stay shared in the page cache
    except (ValueError, OSError):  # shorter than its header says, or no header
        return None
    complete = path.stat().st_size == array.offset + array.nbytes
    if list(array.shape) != key["shape"] or array.dtype != np.uint8 or not complete:
        return None
    return torch.from_numpy(array)


def _build(path: Path, ds, column: str, resolution: int, channels: int) -> None:
    out = np.lib.format.open_memmap(path, "w+", np.uint8, (len(ds), channels, resolution, resolution))
    decode_into(out, ds, column, resolution, channels)
    out.flush()
    del out


# ---------------------------------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------------------------------


def decode_images(ds, column: str, resolution: int | None = None, channels: int | None = None, workers=None):
    """Decode a whole image column into a uint8 tensor `(N, C, R, R)` in this process's memory.

    Returns `(images, resolution, channels)`, the latter two resolved from the first image when not given.
    """
    resolution, channels = image_format(ds, column, resolution, channels)
    images = torch.empty(len(ds), channels, resolution, resolution, dtype=torch.uint8)
    decode_into(images.numpy(), ds, column, resolution, channels, workers)
    return images, resolution, channels


def decode_into(
    out: np.ndarray, ds, column: str, resolution: int, channels: int, workers: int | None = None, chunk: int = CHUNK
) -> None:
    """Fill uint8 `out` `(N, C, R, R)` with the images of `ds[column]`, `chunk` rows at a time.

    An `Image` column is decoded by `workers` processes (default: one per usable core, no more than chunks); each
    returns its decoded rows and only this process writes `out`, so `out` may be any array, mapped or not.
    """
    import datasets
    from tqdm.auto import tqdm

    parts = [(start, min(start + chunk, len(ds))) for start in range(0, len(ds), chunk)]
    if isinstance(ds.features[column], (datasets.Array2D, datasets.Array3D)):
        for start, stop in tqdm(parts, desc="converting images", leave=False):
            out[start:stop] = _array_rows(ds, column, start, stop, resolution, channels)
        return
    task = (ds.select_columns([column]), column, resolution, channels)
    workers = min(workers or usable_cores(), len(parts))
    if workers <= 1:
        for start, stop in tqdm(parts, desc="decoding images", leave=False):
            out[start:stop] = _decode_rows(start, stop, *task)
        return
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from itertools import islice
    from multiprocessing import get_all_start_methods, get_context

    # fork where there is one, as torch's DataLoader does: a worker starts at once (spawn re-imports torch and
    # datasets, ~20 s per worker on a busy machine) and shares this process's Arrow mapping; it runs PIL and numpy
    # only, never torch or CUDA, so what it inherits of them is never used
    context = get_context("fork" if "fork" in get_all_start_methods() else "spawn")
    # at most 2 chunks per worker in flight, each dropped once written: holding every decoded chunk until the pool
    # is done kept a second copy of the whole source in this process's memory
    todo, bar = iter(parts), tqdm(total=len(parts), desc="decoding images", leave=False)
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=task) as pool:
        pending = {pool.submit(_decode_in_worker, *part): part for part in islice(todo, 2 * workers)}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                start, stop = pending.pop(future)
                out[start:stop] = future.result()
                bar.update()
            pending.update({pool.submit(_decode_in_worker, *part): part for part in islice(todo, len(done))})
    bar.close()


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, which `taskset` and schedulers set)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


_WORKER: tuple = ()  # (ds, column, resolution, channels) in a decoding worker


def _start_worker(*task) -> None:
    global _WORKER
    _WORKER = task


def _decode_in_worker(start: int, stop: int) -> np.ndarray:
    return _decode_rows(start, stop, *_WORKER)


def _decode_rows(start: int, stop: int, ds, column: str, resolution: int, channels: int) -> np.ndarray:
    """uint8 `(stop - start, C, R, R)`: rows `start:stop` decoded one PIL image at a time."""
    return np.stack([_pil_to_array(image, channels, resolution) for image in ds[start:stop][column]])


def _pil_to_array(image, channels: int, resolution: int) -> np.ndarray:
    from PIL import Image

    image = image.convert("L" if channels == 1 else "RGB")
    if image.size != (resolution, resolution):
        image = image.resize((resolution, resolution), Image.BICUBIC)
    array = np.asarray(image, dtype=np.uint8)
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


def _native_format(first, resolution: int | None = None) -> tuple[int, int]:
    """(resolution, channels) of one decoded example: a PIL image or an `(H, W)` / `(H, W, C)` array. A resolution
    given wins: images of any shape (photographs of fine-grained targets) are resized to it."""
    if hasattr(first, "size") and hasattr(first, "mode"):
        (w, h), c = first.size, (1 if first.mode in ("L", "1", "I", "I;16", "F") else 3)
    else:
        shape = np.shape(first)
        h, w, c = shape[0], shape[1], (shape[2] if len(shape) == 3 else 1)
    if h != w and resolution is None:
        raise ConfigError(f"images are {w}x{h}, not square; set --resolution to resize them to a square.")
    return resolution or h, c


# ---------------------------------------------------------------------------------------------------------------------
# Already-decoded arrays
# ---------------------------------------------------------------------------------------------------------------------


def arrow_view(ds, column: str, resolution: int, channels: int) -> torch.Tensor | None:
    """An `Array2D` / `Array3D` column as uint8 `(N, C, R, R)` viewing Arrow's memory (the memory-mapped `.arrow`
    file of a saved or cached dataset), or None where that needs a copy: several chunks, an indices mapping, another
    dtype, channels last, or another resolution or channel count."""
    import datasets
    import pyarrow as pa

    feature = ds.features[column]
    if not isinstance(feature, (datasets.Array2D, datasets.Array3D)) or ds._indices is not None:
        return None
    shape = tuple(feature.shape) + (1,) * (3 - len(feature.shape))  # (H, W, c)
    column_data = ds.data.column(column)
    if feature.dtype != "uint8" or shape != (resolution, resolution, channels) or channels != 1:
        return None
    if column_data.num_chunks != 1 or column_data.null_count:
        return None
    try:
        values = _flat_values(column_data.chunk(0)).to_numpy(zero_copy_only=True)
    except pa.ArrowInvalid:
        return None
    with warnings.catch_warnings():  # read-only by design: nothing writes into source images
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(values.reshape(len(ds), 1, resolution, resolution))


def _flat_values(values):
    """The uint8 values under an `Array2D` / `Array3D` Arrow array (nested lists), without copying."""
    import pyarrow as pa

    if isinstance(values, pa.ExtensionArray):
        values = values.storage
    while pa.types.is_list(values.type) or pa.types.is_fixed_size_list(values.type):
        values = values.flatten()
    return values


def _array_rows(ds, column: str, start: int, stop: int, resolution: int, channels: int) -> np.ndarray:
    """Rows `start:stop` of an `Array2D` / `Array3D` column as uint8 `(stop - start, C, R, R)`, converted."""
    rows = ds.with_format("arrow")[start:stop][column].combine_chunks()
    values = _flat_values(rows).to_numpy(zero_copy_only=False).reshape(len(rows), *ds.features[column].shape)
    array = torch.from_numpy(values.copy())  # (n, H, W) or (n, H, W, c)
    array = array[:, None] if array.ndim == 3 else array.permute(0, 3, 1, 2)
    return data.convert_images(array, channels, resolution).numpy()
