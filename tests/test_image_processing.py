"""ImageProcessing: transformers' PIL-backend image processors, redone on tensors, against the processors themselves."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import transformers
from PIL import Image
from transformers.image_transforms import center_crop as reference_center_crop
from transformers.image_transforms import get_resize_output_image_size

from hf_ssdd.config import ConfigError
from hf_ssdd.image_processing import ImageProcessing, center_crop, output_size, resize

IMAGENET = {"image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}
CLIP = {"image_mean": [0.4815, 0.4578, 0.4082], "image_std": [0.2686, 0.2613, 0.2758]}
HALF = {"image_mean": [0.5] * 3, "image_std": [0.5] * 3}

# The Hub checkpoints' processor settings, with the sides scaled down (224 -> 16).
PROCESSORS = {
    "vit": (transformers.ViTImageProcessorPil, {"size": 16, "resample": 2, **HALF}),  # google/vit-base-patch16-224
    "deit": (  # facebook/deit-base-distilled-patch16-224: warp to 256, crop 224
        transformers.DeiTImageProcessorPil,
        {"size": 18, "do_center_crop": True, "crop_size": 16, "resample": 3, **IMAGENET},
    ),
    "dinov2": (  # facebook/dinov2-small: shortest edge 256, crop 224
        transformers.BitImageProcessorPil,
        {"size": {"shortest_edge": 18}, "crop_size": {"height": 16, "width": 16}, "resample": 3, **IMAGENET},
    ),
    "clip": (transformers.CLIPImageProcessorPil, {"size": 16, "crop_size": 16, "resample": 3, **CLIP}),
    "siglip": (transformers.SiglipImageProcessorPil, {"size": {"height": 16, "width": 16}, "resample": 3, **HALF}),
    "convnext": (transformers.ConvNextImageProcessorPil, {"size": 16, "crop_pct": 0.875, "resample": 3, **IMAGENET}),
    "convnext_384": (transformers.ConvNextImageProcessorPil, {"size": 384, "resample": 3, **IMAGENET}),
    "bit": (transformers.BitImageProcessorPil, {"size": {"shortest_edge": 16}, "crop_size": 16, **HALF}),
    # Every flag and filter, one at a time.
    "no_resize": (transformers.BitImageProcessorPil, {"do_resize": False, "crop_size": 16}),
    "no_crop": (transformers.BitImageProcessorPil, {"size": {"shortest_edge": 14}, "do_center_crop": False}),
    "no_normalize": (transformers.ConvNextImageProcessorPil, {"size": 16, "do_normalize": False}),
    "no_rescale": (transformers.ViTImageProcessorPil, {"size": 16, "do_rescale": False, "image_mean": 127.5}),
    "rescale_factor": (
        transformers.SiglipImageProcessorPil, {"size": 16, "rescale_factor": 1 / 127.5, "image_mean": 1, "image_std": 1}
    ),
    "bilinear": (transformers.CLIPImageProcessorPil, {"size": 14, "crop_size": 12, "resample": 2}),
    "nearest": (transformers.CLIPImageProcessorPil, {"size": 14, "crop_size": 12, "resample": 0}),
    "convnext_crop_after_crop_pct": (
        transformers.ConvNextImageProcessorPil,
        {"size": 16, "do_center_crop": True, "crop_size": {"height": 12, "width": 10}},
    ),
    "oblong": (transformers.ViTImageProcessorPil, {"size": {"height": 12, "width": 20}, "resample": 3}),
}
SHAPES = [(3, 24, 24), (3, 40, 28), (3, 13, 31), (1, 20, 36), (3, 9, 9)]  # (channels, height, width)


def pictures(n, channels, height, width, seed=0):
    """`(n, channels, height, width)` uint8: smooth random shapes plus noise, so every filter has edges to overshoot."""
    g = torch.Generator().manual_seed(seed)
    smooth = F.interpolate(torch.rand(n, channels, 4, 4, generator=g), size=(height, width), mode="bicubic")
    noise = torch.rand(n, channels, height, width, generator=g) - 0.5
    return ((smooth + 0.4 * noise).clamp(0, 1) * 255).round().to(torch.uint8)


def to_pil(image):
    """`(c, H, W)` uint8 -> an RGB PIL image (grey replicated, which is what `do_convert_rgb` does)."""
    array = image.permute(1, 2, 0).numpy()
    return Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).convert("RGB")


def processed(processor, images):
    """The processor's own pixel values `(n, 3, h, w)` for uint8 images `(n, c, H, W)`."""
    return processor([to_pil(image) for image in images], return_tensors="pt")["pixel_values"]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", PROCESSORS)
def test_pixel_values_match_the_processor_within_a_level(name, shape):
    cls, settings = PROCESSORS[name]
    processor = cls(**settings)
    images = pictures(3, *shape)
    expected = processed(processor, images)
    processing = ImageProcessing.from_processor(processor)
    actual = processing(images.float().expand(-1, 3, -1, -1) / 255)
    assert actual.shape == expected.shape
    levels = (actual - expected) * torch.tensor(processing.std).view(1, -1, 1, 1) / processing.scale * 255
    assert levels.abs().max() <= 1.5  # Pillow rounds each of its two passes to 8 bits: half a level each


# ---------------------------------------------------------------------------------------------------------------------
# The pieces, against transformers' and Pillow's own
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("input_size", [(24, 24), (40, 28), (13, 31), (7, 100)])
@pytest.mark.parametrize("size", [{"shortest_edge": 16}, {"shortest_edge": 27}, {"height": 12, "width": 20}])
def test_output_size_is_transformers_own(input_size, size):
    image = np.zeros((3, *input_size))
    if "shortest_edge" in size:
        expected = get_resize_output_image_size(image, size["shortest_edge"], default_to_square=False)
    else:
        expected = (size["height"], size["width"])
    assert output_size(input_size, size) == tuple(expected)


@pytest.mark.parametrize("input_size", [(10, 10), (9, 12), (5, 5), (16, 3), (4, 20)])
@pytest.mark.parametrize("crop", [(8, 8), (7, 4), (11, 12)])
def test_center_crop_picks_the_centre_and_zero_pads_as_transformers_does(input_size, crop):
    x = torch.rand(2, 3, *input_size) + 1  # no zeros of its own, so the padding shows
    expected = np.stack([reference_center_crop(image.numpy(), crop, input_data_format="channels_first") for image in x])
    torch.testing.assert_close(center_crop(x, crop), torch.from_numpy(expected), rtol=0, atol=0)


# (input, output) of the height and of the width: shrinking, growing, one side kept, the height shrinking most (which
# Pillow >= 13 filters first), and exact halves that the nearest filter must break as Pillow does.
SIDES = [
    ((28, 27), (20, 27)), ((36, 48), (40, 38)), ((9, 32), (31, 7)), ((12, 12), (28, 27)), ((40, 18), (28, 18)),
    ((30, 29), (27, 13)),
]


@pytest.mark.parametrize("mode, resample", [("bilinear", 2), ("bicubic", 3), ("nearest", 0)])
@pytest.mark.parametrize("height, width", SIDES, ids=str)
def test_resize_is_pillows_within_a_level(mode, resample, height, width):
    images = pictures(2, 3, height[0], width[0], seed=height[0])
    expected = np.stack([np.asarray(to_pil(image).resize((width[1], height[1]), resample)) for image in images])
    actual = resize(images.float() / 255, (height[1], width[1]), mode) * 255
    difference = (actual.permute(0, 2, 3, 1) - torch.from_numpy(expected).float()).abs()
    assert difference.max() <= (0 if mode == "nearest" else 1.5)  # Pillow rounds each pass: half a level, twice


@pytest.mark.parametrize("mode", ["bilinear", "bicubic", "nearest"])
def test_resize_keeps_a_flat_image_flat_and_an_unchanged_size_exact(mode):
    flat = torch.full((2, 3, 13, 9), 0.3)
    torch.testing.assert_close(resize(flat, (20, 5), mode), torch.full((2, 3, 20, 5), 0.3))
    x = torch.rand(2, 3, 13, 9)
    assert torch.equal(resize(x, (13, 9), mode), x)


def test_runs_on_the_device_of_the_images():
    processing = ImageProcessing(size={"shortest_edge": 5}, resample="bicubic", crops=((4, 6),), mean=(0.4, 0.5, 0.6))
    out = processing(torch.rand(2, 3, 9, 7, device="meta"))  # no data, but every step must stay on that device
    assert out.device.type == "meta" and out.shape == (2, 3, 4, 6)


def test_image_size_is_the_square_side_the_model_sees_or_none():
    assert ImageProcessing(size={"shortest_edge": 18}, crops=((16, 16),)).image_size == 16
    assert ImageProcessing(size={"shortest_edge": 18}).image_size == 18
    assert ImageProcessing(size={"height": 12, "width": 20}).image_size is None
    assert ImageProcessing().image_size is None


# ---------------------------------------------------------------------------------------------------------------------
# What it refuses rather than approximates
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls, settings, named",
    [
        (transformers.ViTImageProcessorPil, {"resample": 1}, "resample=1"),  # LANCZOS
        (transformers.ViTImageProcessorPil, {"resample": 5}, "resample=5"),  # HAMMING
        (transformers.BitImageProcessorPil, {"size": {"longest_edge": 16}}, "size={'longest_edge': 16}"),
        (transformers.BitImageProcessorPil, {"size": {"max_height": 16, "max_width": 16}}, "size="),
        (transformers.ConvNextImageProcessorPil, {"size": {"height": 16, "width": 16}}, "size="),
        (transformers.ViTImageProcessorPil, {"do_pad": True, "pad_size": {"height": 20, "width": 20}}, "do_pad=True"),
        (transformers.LevitImageProcessorPil, {}, "image_processor_type='LevitImageProcessor'"),
        (transformers.EfficientNetImageProcessorPil, {}, "image_processor_type='EfficientNetImageProcessor'"),
    ],
)
def test_a_setting_it_cannot_reproduce_is_a_one_line_config_error_naming_it(cls, settings, named):
    with pytest.raises(ConfigError) as err:
        ImageProcessing.from_processor(cls(**settings))
    assert named in str(err.value) and "\n" not in str(err.value)


def test_a_step_switched_off_needs_none_of_its_settings():
    processing = ImageProcessing.from_processor(
        transformers.ViTImageProcessorPil(do_resize=False, resample=1, do_normalize=False, do_rescale=False)
    )
    assert processing == ImageProcessing(size=None, crops=(), scale=255.0, mean=(0.0,), std=(1.0,))
