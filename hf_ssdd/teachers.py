"""The frozen teacher `g`: any `transformers` vision encoder -> one representation vector per image.

The teacher only ever sees real (augmented) images, which arrive in [0, 1] pixel space at the distilled resolution.
It converts them to its channels and then does to them what its own image processor would (resize with the
processor's filter, centre crop, rescale, normalise: see `image_processing`), independently of the learner, and pools
its output into one vector per image in the way its model family is meant to be read.

    teacher = Teacher.from_pretrained("facebook/dinov2-small")
    targets = teacher(images)  # (n, C, H, W) in [0, 1] -> (n, 384) float32, no grad
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .config import ConfigError
from .data import convert_channels
from .image_processing import ImageProcessing
from .provenance import snapshot_commit
from .resnet import MODEL_TYPE as RESNET_TYPE

PROBE_SIDE = 32  # side of the blank image that measures `dim` when the encoder has no fixed input size


def _patches_in_order(encoder: nn.Module, pixel_values: torch.Tensor) -> dict:
    """ViT-MAE shuffles patches by `argsort(noise)`, drawn from the global RNG unless given: ascending noise keeps
    them in place, so two forwards agree exactly and the run's random stream is left alone."""
    num_patches = encoder.embeddings.patch_embeddings.num_patches
    noise = torch.arange(num_patches, dtype=torch.float32, device=pixel_values.device)
    return {"noise": noise.expand(len(pixel_values), -1)}


@dataclass(frozen=True)
class Family:
    """How one `config.model_type` is read as a teacher."""

    pooling: str  # what pooling="auto" resolves to
    tower: str | None = None  # attribute holding the vision encoder of a vision-language model
    config: dict = field(default_factory=dict)  # set on the config before the weights are loaded
    inputs: Callable[[nn.Module, torch.Tensor], dict] | None = None  # extra keyword arguments of every forward


FAMILIES = {
    "vit": Family("cls"),
    "deit": Family("cls"),
    "vit_mae": Family("cls", config={"mask_ratio": 0.0}, inputs=_patches_in_order),
    "dinov2": Family("pooler"),
    "clip_vision_model": Family("pooler"),
    "clip": Family("pooler", tower="vision_model"),
    "siglip_vision_model": Family("pooler"),
    "siglip": Family("pooler", tower="vision_model"),
    "resnet": Family("pooler"),
    "convnext": Family("pooler"),
    RESNET_TYPE: Family("pooler"),  # the torchvision-layout ResNets of `train-teacher` and `import-teacher`
}
OTHER_FAMILY = Family("mean")

# pooling -> (output field, that field -> (n, d))
POOLINGS = {
    "cls": ("last_hidden_state", lambda h: h[:, 0]),  # (n, T, d) -> (n, d)
    "pooler": ("pooler_output", lambda p: p.flatten(1)),  # (n, d) or (n, d, 1, 1) -> (n, d)
    "mean": ("last_hidden_state", lambda h: h.mean(1) if h.ndim == 3 else h.mean((-2, -1))),  # tokens or (H, W)
}


class Teacher(nn.Module):
    """Frozen transformers vision encoder -> one pooled vector per image.

    It stays in eval mode whatever its parent does, and runs `chunk_size` images at a time so memory is bounded
    however large the real batch. Outputs are computed under `no_grad` (not `inference_mode`) so that they can be
    used as regression targets inside autograd graphs.

    Example:
        >>> teacher = Teacher.from_pretrained("google/vit-base-patch16-224-in21k")
        >>> teacher(torch.rand(8, 1, 28, 28)).shape  # grey 28x28 -> RGB 224x224, CLS token
        torch.Size([8, 768])
    """

    def __init__(
        self,
        encoder: nn.Module,
        *,
        name_or_path: str,
        revision: str | None,
        model_type: str,
        pooling: str,
        processing: ImageProcessing,
        num_channels: int,
        chunk_size: int = 256,
    ):
        super().__init__()
        if pooling != "auto" and pooling not in POOLINGS:
            raise ConfigError(f"teacher_pooling={pooling!r} is not one of auto, {', '.join(POOLINGS)}.")
        family = FAMILIES.get(model_type, OTHER_FAMILY)
        self.encoder = encoder.requires_grad_(False).eval()
        self.name_or_path, self.revision, self.model_type = name_or_path, revision, model_type
        self.pooling = family.pooling if pooling == "auto" else pooling
        self.processing, self.num_channels = processing, num_channels
        self.image_size, self.mean, self.std = processing.image_size, processing.mean, processing.std
        self.chunk_size = chunk_size
        self._extra_inputs = family.inputs
        # One blank image measures `dim`, and a pooling with nothing to read fails here rather than mid-run.
        side = self.image_size or getattr(getattr(encoder, "config", None), "image_size", None) or PROBE_SIDE
        self.dim = self(torch.zeros(1, num_channels, side, side)).shape[1]

    @classmethod
    def from_pretrained(
        cls, name_or_path: str, revision: str | None = None, pooling: str = "auto"
    ) -> Teacher:
        """Load a vision encoder by Hub id or local folder, with the preprocessing of its own image processor."""
        from transformers import AutoConfig, AutoModel

        name_or_path = str(name_or_path)
        try:
            config = AutoConfig.from_pretrained(name_or_path, revision=revision)
        except (OSError, ValueError) as err:
            raise _load_error(name_or_path, err) from err
        vision_config = getattr(config, "vision_config", config)
        if not hasattr(vision_config, "num_channels") and not hasattr(vision_config, "image_size"):
            raise ConfigError(
                f"teacher {name_or_path!r} is a {config.model_type!r} model without image input; "
                "check --teacher (it must be a vision encoder)."
            )
        family = FAMILIES.get(config.model_type, OTHER_FAMILY)
        for key, value in family.config.items():
            setattr(config, key, value)
        try:
            model = AutoModel.from_pretrained(name_or_path, config=config, revision=revision)
        except (OSError, ValueError) as err:
            raise _load_error(name_or_path, err) from err
        processing = ImageProcessing.for_model(name_or_path, revision, vision_config)
        return cls(
            getattr(model, family.tower) if family.tower else model,
            name_or_path=name_or_path,
            revision=revision,
            model_type=config.model_type,
            pooling=pooling,
            processing=processing,
            num_channels=getattr(vision_config, "num_channels", 3),
        )

    def train(self, mode: bool = True) -> Teacher:
        """Stay in eval mode: a parent's `.train()` must not switch on dropout or batch statistics in the teacher."""
        return super().train(False)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """`(n, c, H, W)` pixels in [0, 1] -> `(n, num_channels, h, w)`: what the encoder's image processor gives it
        for these images as 8-bit pictures, on the encoder's device and in its dtype."""
        parameter = next(self.encoder.parameters())
        x = convert_channels(images.float(), self.num_channels).to(parameter.device)
        return self.processing(x).to(parameter.dtype)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """`(n, c, H, W)` pixels in [0, 1], c in {1, 3} -> `(n, dim)` float32 representations."""
        return torch.cat([self._encode(self.preprocess(chunk)) for chunk in images.split(self.chunk_size)])

    @torch.no_grad()
    def on_normalized(self, x: torch.Tensor, normalization) -> torch.Tensor:
        """`(n, C, H, W)` images in a learner's normalised space -> `(n, dim)`: the teacher sees the pixels they stand
        for, clipped to [0, 1] (a synthetic image may leave that range; no real image does)."""
        return self(normalization.denormalize(x).clamp(0, 1))

    def _encode(self, pixel_values: torch.Tensor) -> torch.Tensor:
        extra = self._extra_inputs(self.encoder, pixel_values) if self._extra_inputs else {}
        output = self.encoder(pixel_values=pixel_values, **extra)
        name, pool = POOLINGS[self.pooling]
        value = getattr(output, name, None)
        vectors = None if value is None else pool(value)
        if vectors is None or vectors.ndim != 2:
            raise ConfigError(
                f"teacher {self.name_or_path!r} ({self.model_type}) gives no {self.pooling!r} vector per image "
                f"({name} is {None if value is None else tuple(value.shape)}); "
                f"use another --teacher_pooling ({', '.join(p for p in POOLINGS if p != self.pooling)})."
            )
        return vectors.float()

    @functools.cached_property
    def provenance(self) -> dict:
        """Where the teacher is (`teacher_provenance`), found once: it hashes the weight files or asks the Hub."""
        return teacher_provenance(self.name_or_path, self.revision)

    def describe(self) -> dict:
        """Provenance of the targets, for dataset cards: where the teacher is, how it is read."""
        return {
            **self.provenance,
            "pooling": self.pooling,
            "dim": self.dim,
            "image_size": self.image_size,
            "mean": list(self.mean),
            "std": list(self.std),
            "model_type": self.model_type,
        }


WEIGHT_FILES = ("*.safetensors", "*.bin")  # what `save_pretrained` writes the weights to


def teacher_provenance(name_or_path: str, revision: str | None = None) -> dict:
    """Where a reader can find a teacher: a Hub model by `id` and the commit (`revision`) its files were read from; a
    local folder by its name and the sha256 of each weight file (what `sha256sum` prints, and what the Hub shows once
    the folder is uploaded), never by its path, which means nothing on another machine and may name the user."""
    folder = Path(name_or_path)
    if folder.is_dir():
        weights = sorted(path for pattern in WEIGHT_FILES for path in folder.glob(pattern))
        return {"folder": folder.resolve().name, "sha256": {path.name: file_sha256(path) for path in weights}}
    return {"id": name_or_path, "revision": _hub_commit(name_or_path, revision) or revision}


def file_sha256(path: Path) -> str:
    """What `sha256sum` prints for the file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _hub_commit(repo_id: str, revision: str | None) -> str | None:
    """The commit a Hub model's files come from at `revision`: the name of their snapshot folder in the Hub cache
    (None when the Hub and the cache cannot tell, e.g. offline with nothing cached)."""
    from transformers.utils import cached_file

    try:
        path = cached_file(repo_id, "config.json", revision=revision, _raise_exceptions_for_missing_entries=False)
    except OSError:
        return None
    return snapshot_commit(path)


def _load_error(name_or_path: str, err: OSError | ValueError) -> ConfigError:
    """One line for the user instead of a traceback from deep inside transformers."""
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    problem = (
        "is neither a local folder nor a reachable Hub model"
        if isinstance(err, OSError)
        else "cannot be loaded by transformers.AutoModel"
    )
    return ConfigError(f"teacher {name_or_path!r} {problem} ({reason}); check --teacher.")
