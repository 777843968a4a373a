"""A transformers image processor's preprocessing, on batched tensors on any device.

`AutoImageProcessor` works one PIL image at a time on the CPU; a teacher reads thousands of augmented views per step
where its weights are. `ImageProcessing` holds the settings that shape a model's input, read from the processor object
itself (so every class default is transformers' own), and applies them in the order of the PIL backend:

    resize -> centre crop (zero-padded where the image is smaller) -> rescale -> normalise

    processing = ImageProcessing.from_pretrained("facebook/dinov2-small")
    pixel_values = processing(images)  # (n, 3, H, W) in [0, 1] -> (n, 3, 224, 224): shortest edge 256, crop 224

Pixels in [0, 1] stand for the 8-bit values `255 * x` the processor would be given. Resizing is Pillow's: a separable
filter widened by the downscale factor (what `F.interpolate(..., antialias=True)` computes), one pass per side in
Pillow's order, each clipped to the pixel range as Pillow stores it in 8 bits. Pillow also rounds every pass to 8 bits;
that is not copied, so a pixel may differ from the processor's by about a level in 255.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from PIL import __version__ as PILLOW_VERSION

from .config import ConfigError

# PIL filter number -> the F.interpolate mode that computes it ("nearest" is Pillow's own pick, see `resize`).
# LANCZOS (1), BOX (4) and HAMMING (5) have none.
RESAMPLE = {0: "nearest", 2: "bilinear", 3: "bicubic"}
# Pillow filters the width first; from 13.0 the height first when it loses over twice as many pixels as the width.
PILLOW_HEIGHT_FIRST = int(PILLOW_VERSION.split(".")[0]) >= 13
CONVNEXT_WARP_EDGE = 384  # ConvNeXt's processor warps to size x size from this shortest edge on, else crops crop_pct
# The steps of transformers' PIL pipeline: a processor class that overrides none of them runs that pipeline unchanged.
PIPELINE_STEPS = (
    "preprocess", "_standardize_kwargs", "_preprocess_image_like_inputs", "_prepare_image_like_inputs",
    "process_image", "_preprocess", "resize", "center_crop", "rescale", "normalize", "pad",
)


@dataclass(frozen=True)
class ImageProcessing:
    """What one image processor does to an image, as data; calling it does that to a batch.

    `size` is the resize target, `{"height", "width"}` or `{"shortest_edge"}` (aspect ratio kept), None for no resize.
    `crops` are the centre crops `(height, width)` that follow, in order. `scale` maps [0, 1] pixels to the values the
    processor normalises: `255 * rescale_factor`, or 255 when it does not rescale. `mean` and `std` have one entry per
    channel or one for all; `(0,)` and `(1,)` when it does not normalise.

    Example:
        >>> processing = ImageProcessing(size={"shortest_edge": 4}, resample="bicubic", crops=((4, 4),))
        >>> processing(torch.rand(2, 3, 8, 6)).shape  # 8x6 -> 5x4 -> 4x4
        torch.Size([2, 3, 4, 4])
    """

    size: dict[str, int] | None = None
    resample: str = "bilinear"  # a value of RESAMPLE
    crops: tuple[tuple[int, int], ...] = ()
    scale: float = 1.0
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.5,)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """`(n, c, H, W)` pixels in [0, 1] -> `(n, c, h, w)` float32 model input, on the images' device."""
        x = images.float()
        if self.size is not None:
            x = resize(x, output_size(x.shape[-2:], self.size), self.resample)
        for crop in self.crops:
            x = center_crop(x, crop)
        mean = torch.tensor(self.mean, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, -1, 1, 1)
        return (x * self.scale - mean) / std

    @property
    def image_size(self) -> int | None:
        """Side of the square the model is given for square images; None when it follows the input (or is oblong)."""
        if self.crops:
            height, width = self.crops[-1]
        elif self.size is None:
            return None
        elif "shortest_edge" in self.size:
            return self.size["shortest_edge"]
        else:
            height, width = self.size["height"], self.size["width"]
        return height if height == width else None

    @classmethod
    def for_model(cls, name_or_path: str, revision: str | None, config) -> ImageProcessing:
        """What a model's own image processor does (`from_pretrained`), checked against its `config`'s channels; for
        a model without preprocessor_config.json, a warned guess: a bilinear resize to the config's `image_size`,
        mean 0.5 and std 0.5."""
        from transformers.utils import cached_file

        try:
            path = cached_file(
                name_or_path, "preprocessor_config.json", revision=revision, _raise_exceptions_for_missing_entries=False
            )
        except OSError as err:
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ConfigError(f"the image processor of {name_or_path!r} cannot be read ({reason}).") from None
        if path is None:
            side = getattr(config, "image_size", None)
            warnings.warn(
                f"{name_or_path!r} has no preprocessor_config.json: feeding it "
                f"{f'{side}x{side}' if side else 'the input size'}, normalised with mean 0.5 and std 0.5.",
                stacklevel=3,
            )
            return cls(size={"height": side, "width": side} if side else None)
        processing = cls.from_pretrained(name_or_path, revision)
        channels = getattr(config, "num_channels", 3)
        for key, values in (("image_mean", processing.mean), ("image_std", processing.std)):
            if len(values) not in (1, channels):
                raise ConfigError(
                    f"{key}={list(values)} in the image processor of {name_or_path!r} does not fit its {channels} "
                    "channels; give one value per channel."
                )
        return processing

    @classmethod
    def from_pretrained(cls, name_or_path: str, revision: str | None = None) -> ImageProcessing:
        """The image processor of a Hub id or local folder, as `AutoImageProcessor` loads it with the PIL backend."""
        from transformers import AutoImageProcessor

        try:
            processor = AutoImageProcessor.from_pretrained(
                name_or_path, revision=revision, backend="pil", trust_remote_code=False
            )
        except (OSError, ValueError, TypeError, ImportError) as err:
            reason = str(err).strip().splitlines()[0].split(". ")[0] if str(err).strip() else type(err).__name__
            raise ConfigError(
                f"the image processor of {name_or_path!r} cannot be loaded ({reason}); "
                "check image_processor_type in its preprocessor_config.json."
            ) from None
        return cls.from_processor(processor)

    @classmethod
    def from_processor(cls, processor) -> ImageProcessing:
        """The settings of a transformers PIL-backend image processor; a ConfigError for any it does not reproduce."""
        from transformers import ConvNextImageProcessorPil, PilBackend

        name = type(processor).__name__
        convnext = _runs_pipeline_of(processor, ConvNextImageProcessorPil)
        if not convnext and not _runs_pipeline_of(processor, PilBackend):
            raise ConfigError(
                f"image_processor_type={name.removesuffix('Pil')!r} preprocesses in its own way, which hf_ssdd does "
                "not reproduce; use a teacher with a standard processor (ViT, DeiT, BiT, CLIP, SigLIP, ConvNeXt)."
            )
        if getattr(processor, "do_pad", None):
            raise ConfigError(f"do_pad={processor.do_pad!r} in {name} is not supported; set do_pad to false.")
        size, mode, crops = None, "bilinear", []
        if processor.do_resize:
            resample = int(_setting(processor, "resample"))
            if resample not in RESAMPLE:
                raise ConfigError(
                    f"resample={resample} in {name} is a filter hf_ssdd cannot reproduce; use 0 (nearest), "
                    "2 (bilinear) or 3 (bicubic)."
                )
            size, mode = dict(_setting(processor, "size")), RESAMPLE[resample]
            if convnext:
                if set(size) != {"shortest_edge"}:
                    raise ConfigError(f"size={size} in {name} needs a shortest_edge; give size as one int.")
                edge = size["shortest_edge"]
                if edge < CONVNEXT_WARP_EDGE:
                    size = {"shortest_edge": int(edge / _setting(processor, "crop_pct"))}
                    crops.append((edge, edge))
                else:
                    size = {"height": edge, "width": edge}
            elif set(size) not in ({"shortest_edge"}, {"height", "width"}):
                raise ConfigError(
                    f"size={size} in {name} is not supported; give height and width, or shortest_edge alone."
                )
        if processor.do_center_crop:
            crop = _setting(processor, "crop_size")
            crops.append((crop["height"], crop["width"]))
        scale = 255 * _setting(processor, "rescale_factor") if processor.do_rescale else 255.0
        mean, std = (0.0,), (1.0,)
        if processor.do_normalize:
            mean, std = _floats(_setting(processor, "image_mean")), _floats(_setting(processor, "image_std"))
        return cls(size, mode, tuple(crops), float(scale), mean, std)


def output_size(input_size: tuple[int, int], size: dict[str, int]) -> tuple[int, int]:
    """`(height, width)` after resizing an image of `input_size` to `size`, as transformers computes it."""
    if "shortest_edge" not in size:
        return size["height"], size["width"]
    height, width = input_size
    edge, short, long = size["shortest_edge"], min(height, width), max(height, width)
    return (int(edge * long / short), edge) if width <= height else (edge, int(edge * long / short))


def resize(x: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """`(n, c, H, W)` in [0, 1] -> `(n, c, *size)` as Pillow resizes an 8-bit image: one filter pass per side, in
    Pillow's order, each clipped to [0, 1] (a bicubic overshoot never reaches the next pass); a side that keeps its
    length is not filtered. "nearest" takes the pixels Pillow takes."""
    (in_height, in_width), (height, width) = x.shape[-2:], size
    if mode == "nearest":
        rows, cols = _nearest_indices(in_height, height, x.device), _nearest_indices(in_width, width, x.device)
        return x.index_select(-2, rows).index_select(-1, cols)
    height_first = PILLOW_HEIGHT_FIRST and in_height - height > max(0, 2 * (in_width - width))
    for step in [(height, in_width), size] if height_first else [(in_height, width), size]:
        if tuple(x.shape[-2:]) != tuple(step):
            x = F.interpolate(x, size=step, mode=mode, antialias=True).clamp(0, 1)
    return x


def center_crop(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """`(n, c, H, W)` -> `(n, c, *size)`, the centre as transformers picks it, zero-padded where the image is smaller
    (a negative pad crops, so one `F.pad` does both)."""
    (height, width), (crop_height, crop_width) = x.shape[-2:], size
    top, left = -((height - crop_height) // 2), -((width - crop_width) // 2)
    return F.pad(x, (left, crop_width - width - left, top, crop_height - height - top))


def _nearest_indices(length: int, new_length: int, device) -> torch.Tensor:
    """`(new_length,)` source index of each output pixel, as Pillow's nearest resize picks it: the centre of output
    pixel i, accumulated in doubles step by step and truncated. Where it lands exactly between two source pixels, the
    rounding of that sum decides, so no closed formula (nor `F.interpolate`) agrees with it everywhere."""
    step, position, indices = length / new_length, length / new_length * 0.5, []
    for _ in range(new_length):
        indices.append(int(position))
        position += step
    return torch.tensor(indices, device=device)


def _runs_pipeline_of(processor, reference: type) -> bool:
    """Whether `processor` is a `reference` whose class overrides none of the pipeline's steps."""
    return isinstance(processor, reference) and all(
        getattr(type(processor), step) is getattr(reference, step) for step in PIPELINE_STEPS
    )


def _setting(processor, name: str):
    """A setting the pipeline needs; transformers itself refuses to run without it."""
    value = getattr(processor, name, None)
    if value is None:
        raise ConfigError(f"{name} is not set in {type(processor).__name__}; give it in preprocessor_config.json.")
    return value


def _floats(value) -> tuple[float, ...]:
    """A mean or std, one number for all channels or one per channel, as a tuple of floats."""
    return tuple(float(v) for v in value) if isinstance(value, list | tuple) else (float(value),)
