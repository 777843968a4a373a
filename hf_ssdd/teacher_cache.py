"""The teacher off the critical path: its representations of `V` fixed augmented views of every real image.

The teacher is frozen, so what it says about a given view of a given image never changes. With `teacher_views = V`,
view `v` of image `i` is one fixed random crop and flip, the teacher's representation of every `(v, i)` is computed
once, and an outer step draws a view number per image of its batch and reads the targets `(n, d)` from disk instead
of running the teacher. The price is a finite set of augmentations (`V` per image instead of a fresh draw per step);
`teacher_views = 0` keeps the paper's fresh draw and the teacher in the loop.

The features live in one memory-mapped `.npy` file `(V, N, d)` float32, in a folder named after a hash of everything
that determines them (teacher weights and preprocessing, images, normalisation, augmentation, seed, `V`), so any run
with the same inputs reuses them. With several processes each fills its share of the file (the folder must be on a
file system they share); the folder is renamed into place only when complete, so a crash leaves no half cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import torch

from .data import Augmentation, Normalization, Stream, step_generator

FEATURES_FILE = "features.npy"
META_FILE = "meta.json"


def default_cache_dir() -> Path:
    """`$HF_SSDD_CACHE`, else `hf_ssdd/teacher_features` under the Hugging Face cache (`$HF_HOME`)."""
    from huggingface_hub import constants

    return Path(os.environ.get("HF_SSDD_CACHE") or Path(constants.HF_HOME) / "hf_ssdd" / "teacher_features")


def teacher_fingerprint(teacher) -> str:
    """Hash of a `Teacher`'s provenance, preprocessing and weights: equal for teachers that give equal outputs."""
    provenance = {**teacher.describe(), "processing": dataclasses.asdict(teacher.processing)}
    digest = hashlib.blake2b(json.dumps(provenance, sort_keys=True).encode(), digest_size=16)
    for name, tensor in sorted(teacher.encoder.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def images_digest(images: torch.Tensor, chunk: int = 4096) -> str:
    """blake2b of uint8 `(N, C, H, W)`'s bytes, fed a chunk at a time: `images` may map a file larger than memory."""
    digest = hashlib.blake2b(digest_size=16)
    for start in range(0, len(images), chunk):
        digest.update(images[start : start + chunk].contiguous().numpy())
    return digest.hexdigest()


def view_augmentations(num_images: int, num_views: int, padding: int, flip: bool, seed: int) -> Augmentation:
    """The fixed views: crop offsets `(V, N, 2)` and flips `(V, N)`; view `v` is drawn from `(seed, v)` alone."""
    views = [
        Augmentation.sample(num_images, padding, flip, step_generator(seed, v, Stream.CACHED_VIEWS))
        for v in range(num_views)
    ]
    return Augmentation(torch.stack([a.offsets for a in views]), torch.stack([a.flips for a in views]), padding)


class TeacherCache:
    """Teacher targets of `V` fixed views per real image, read by `(image indices, view numbers)`.

    Example:
        >>> cache = TeacherCache.build(teacher, images, normalization, num_views=10, padding=4, flip=True, seed=0)
        >>> views, targets = cache.lookup(indices, view_ids)  # Augmentation of the batch, targets (n, d)
        >>> x = views.apply(normalization.normalize(images[indices]))  # the learner sees the same views
    """

    def __init__(self, path: Path, views: Augmentation):
        self.path, self.views = Path(path), views
        self.features = np.load(self.path / FEATURES_FILE, mmap_mode="r")  # (V, N, d)

    def lookup(self, indices: torch.Tensor, view_ids: torch.Tensor) -> tuple[Augmentation, torch.Tensor]:
        """`(n,)` image indices and view numbers -> their `Augmentation` and teacher targets `(n, d)` float32."""
        offsets, flips = self.views.offsets[view_ids, indices], self.views.flips[view_ids, indices]
        targets = np.ascontiguousarray(self.features[view_ids.numpy(), indices.numpy()])
        return Augmentation(offsets, flips, self.views.padding), torch.from_numpy(targets)

    @classmethod
    def build(
        cls,
        teacher,
        images: torch.Tensor,
        normalization: Normalization,
        num_views: int,
        padding: int,
        flip: bool,
        seed: int,
        cache_dir: str | Path | None = None,
        accelerator=None,
        chunk_size: int = 512,
        fill: str = "black",
    ) -> TeacherCache:
        """Open the cache for these inputs, computing it first if no run has (`images` `(N, C, H, W)` uint8; `fill`
        is the `crop_fill` of the views)."""
        from accelerate import PartialState
        from tqdm.auto import tqdm

        state = accelerator.state if accelerator is not None else PartialState()
        views = view_augmentations(len(images), num_views, padding, flip, seed)
        key = {
            "teacher": teacher_fingerprint(teacher),
            "images": images_digest(images),
            "mean": list(normalization.mean), "std": list(normalization.std),
            "num_views": num_views, "padding": padding, "flip": flip, "seed": seed, "fill": fill,
        }
        name = hashlib.blake2b(json.dumps(key, sort_keys=True).encode(), digest_size=12).hexdigest()
        path = Path(cache_dir or default_cache_dir()) / name
        if (path / META_FILE).exists():
            return cls(path, views)

        tmp = path.with_name(name + ".tmp")
        if state.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            np.lib.format.open_memmap(tmp / FEATURES_FILE, "w+", np.float32, (num_views, len(images), teacher.dim))
        state.wait_for_everyone()
        features = np.load(tmp / FEATURES_FILE, mmap_mode="r+")
        work = [(v, chunk) for v in range(num_views) for chunk in torch.arange(len(images)).split(chunk_size)]
        mine = work[state.process_index :: state.num_processes]
        device = next(teacher.parameters()).device
        colour = normalization.crop_fill(fill)
        for v, chunk in tqdm(mine, desc="teacher views", disable=not state.is_main_process):
            x = views[v][chunk].apply(normalization.normalize(images[chunk].to(device)), colour)
            features[v, chunk.numpy()] = teacher.on_normalized(x, normalization).cpu().numpy()
        features.flush()
        del features
        state.wait_for_everyone()
        if state.is_main_process:
            (tmp / META_FILE).write_text(json.dumps(key, indent=2) + "\n")
            if path.exists():
                shutil.rmtree(path)
            os.replace(tmp, path)
        state.wait_for_everyone()
        return cls(path, views)
