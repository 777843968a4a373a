"""Teacher: tiny random encoders of every supported family, saved to disk and loaded back by path."""

import json
from collections.abc import Callable
from typing import NamedTuple

import pytest
import torch
import torch.nn.functional as F
import transformers
from PIL import Image
from torch import nn

from hf_ssdd.config import ConfigError
from hf_ssdd.teachers import Teacher, teacher_provenance

IMAGENET = {"image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}
CLIP = {"image_mean": [0.481, 0.458, 0.408], "image_std": [0.269, 0.261, 0.276]}
HALF = {"image_mean": [0.5] * 3, "image_std": [0.5] * 3}
TRANSFORMER = dict(num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, patch_size=8)
CLIP_TEXT = dict(
    vocab_size=32, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
    max_position_embeddings=8, bos_token_id=0, eos_token_id=1, pad_token_id=2,
)


def plain(model, pixels):
    return model(pixel_values=pixels)


def mae_in_order(model, pixels):
    model.config.mask_ratio = 0.0  # every patch, in order: what the teacher asks of ViT-MAE
    return model(pixel_values=pixels, noise=torch.arange(4.0).expand(len(pixels), -1))


class Spec(NamedTuple):
    config: transformers.PreTrainedConfig
    processor: dict  # preprocessor_config.json: the Hub checkpoint's settings, sides scaled down (224 -> 16)
    pooling: str  # what "auto" must resolve to
    dim: int
    side: int  # what the encoder is fed for square images, after the processor's resize and crops
    mean: tuple
    std: tuple
    forward: Callable = plain  # (model, pixel_values) -> output, the reference's forward


FAMILIES = {
    "vit": Spec(  # google/vit-base-patch16-224
        transformers.ViTConfig(image_size=16, hidden_size=16, **TRANSFORMER),
        {"feature_extractor_type": "ViTFeatureExtractor", "do_resize": True, "size": 16, "resample": 2,
         "do_normalize": True, **HALF},
        "cls", 16, 16, (0.5,) * 3, (0.5,) * 3,
    ),
    "deit": Spec(  # facebook/deit-base-distilled-patch16-224: warp to 256, crop 224
        transformers.DeiTConfig(image_size=16, hidden_size=16, **TRANSFORMER),
        {"feature_extractor_type": "DeiTFeatureExtractor", "do_resize": True, "size": 18, "resample": 3,
         "do_center_crop": True, "crop_size": 16, "do_normalize": True, **IMAGENET},
        "cls", 16, 16, tuple(IMAGENET["image_mean"]), tuple(IMAGENET["image_std"]),
    ),
    "dinov2": Spec(  # facebook/dinov2-small: shortest edge 256, crop 224
        transformers.Dinov2Config(image_size=16, hidden_size=24, **TRANSFORMER),
        {"image_processor_type": "BitImageProcessor", "do_resize": True, "size": {"shortest_edge": 27}, "resample": 3,
         "do_center_crop": True, "crop_size": {"height": 24, "width": 24}, "do_rescale": True,
         "rescale_factor": 1 / 255, "do_normalize": True, "do_convert_rgb": True, **IMAGENET},
        "pooler", 24, 24, tuple(IMAGENET["image_mean"]), tuple(IMAGENET["image_std"]),
    ),
    "clip_vision": Spec(
        transformers.CLIPVisionConfig(image_size=16, hidden_size=16, projection_dim=8, **TRANSFORMER),
        {"image_processor_type": "CLIPImageProcessor", "size": {"shortest_edge": 16}, "resample": 3,
         "do_center_crop": True, "crop_size": {"height": 16, "width": 16}, **CLIP},
        "pooler", 16, 16, tuple(CLIP["image_mean"]), tuple(CLIP["image_std"]),
    ),
    "clip": Spec(  # openai/clip-vit-base-patch32: shortest edge 224, crop 224
        transformers.CLIPConfig(
            text_config=CLIP_TEXT, vision_config=dict(image_size=16, hidden_size=32, **TRANSFORMER), projection_dim=8
        ),
        {"feature_extractor_type": "CLIPFeatureExtractor", "do_resize": True, "size": 16, "resample": 3,
         "do_center_crop": True, "crop_size": 16, "do_normalize": True, **CLIP},
        "pooler", 32, 16, tuple(CLIP["image_mean"]), tuple(CLIP["image_std"]),
        lambda model, pixels: model.vision_model(pixel_values=pixels),
    ),
    "siglip_vision": Spec(  # google/siglip-base-patch16-224: warp to 224, no crop
        transformers.SiglipVisionConfig(image_size=16, hidden_size=16, **TRANSFORMER),
        {"image_processor_type": "SiglipImageProcessor", "do_resize": True, "size": {"height": 16, "width": 16},
         "resample": 3, "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True, **HALF},
        "pooler", 16, 16, (0.5,) * 3, (0.5,) * 3,
    ),
    "resnet": Spec(  # microsoft/resnet-50: ConvNeXt's processor, shortest edge 224 / crop_pct, crop 224
        transformers.ResNetConfig(embedding_size=8, hidden_sizes=[8, 12], depths=[1, 1]),
        {"feature_extractor_type": "ConvNextFeatureExtractor", "do_resize": True, "size": 20, "crop_pct": 0.875,
         "resample": 3, "do_normalize": True, **IMAGENET},
        "pooler", 12, 20, tuple(IMAGENET["image_mean"]), tuple(IMAGENET["image_std"]),
    ),
    "bit": Spec(  # google/bit-50: shortest edge 448, crop 448
        transformers.BitConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], num_groups=4),
        {"image_processor_type": "BitImageProcessor", "do_resize": True, "size": {"shortest_edge": 16},
         "resample": 3, "do_center_crop": True, "crop_size": {"height": 16, "width": 16}, "do_normalize": True,
         "do_convert_rgb": True, **HALF},
        "mean", 16, 16, (0.5,) * 3, (0.5,) * 3,
    ),
    "convnext": Spec(  # facebook/convnext-tiny-224: shortest edge 224 / crop_pct, crop 224
        transformers.ConvNextConfig(hidden_sizes=[8, 20], depths=[1, 1], num_stages=2),
        {"feature_extractor_type": "ConvNextFeatureExtractor", "do_resize": True, "size": 24, "crop_pct": 0.875,
         "resample": 3, "do_normalize": True, **IMAGENET},
        "pooler", 20, 24, tuple(IMAGENET["image_mean"]), tuple(IMAGENET["image_std"]),
    ),
    "convnext_384": Spec(  # facebook/convnext-base-384: from 384 on, a warp to 384 x 384 without crop
        transformers.ConvNextConfig(hidden_sizes=[8, 20], depths=[1, 1], num_stages=2),
        {"feature_extractor_type": "ConvNextFeatureExtractor", "do_resize": True, "size": 384, "crop_pct": 0.875,
         "resample": 3, "do_normalize": True, **IMAGENET},
        "pooler", 20, 384, tuple(IMAGENET["image_mean"]), tuple(IMAGENET["image_std"]),
    ),
    "vit_mae": Spec(  # facebook/vit-mae-base, with a mean and std of its own
        transformers.ViTMAEConfig(image_size=16, hidden_size=16, mask_ratio=0.75, **TRANSFORMER),
        {"feature_extractor_type": "ViTFeatureExtractor", "do_resize": True, "size": 16, "resample": 3,
         "do_normalize": True, "image_mean": [0.4, 0.5, 0.6], "image_std": [0.2, 0.3, 0.4]},
        "cls", 16, 16, (0.4, 0.5, 0.6), (0.2, 0.3, 0.4), mae_in_order,
    ),
    "resnet_grey": Spec(
        transformers.ResNetConfig(num_channels=1, embedding_size=8, hidden_sizes=[8, 12], depths=[1, 1]),
        {"size": 16, "image_mean": [0.3], "image_std": [0.2]},
        "pooler", 12, 16, (0.3,), (0.2,),
    ),
}

# Each flag and filter a processor may set, one at a time, on a family above: (family, settings that change).
VARIANTS = {
    "dinov2_no_resize": ("dinov2", {"do_resize": False}),  # small images are zero-padded by the crop
    "dinov2_no_crop": ("dinov2", {"do_center_crop": False}),
    "convnext_no_normalize": ("convnext", {"do_normalize": False}),
    "convnext_nearest": ("convnext", {"resample": 0}),
    "convnext_crop_after_crop_pct": ("convnext", {"do_center_crop": True, "crop_size": {"height": 20, "width": 16}}),
    "clip_bilinear": ("clip", {"resample": 2}),
    "siglip_rescale_to_minus_one_one": (
        "siglip_vision", {"rescale_factor": 1 / 127.5, "image_mean": [1.0] * 3, "image_std": [1.0] * 3}
    ),
    "resnet_no_rescale": ("resnet", {"do_rescale": False, "image_mean": [124, 116, 104], "image_std": [58, 57, 57]}),
}
CASES = {**{name: (name, {}) for name in FAMILIES}, **VARIANTS}


def save_model(folder, config, processor=None):
    torch.manual_seed(0)
    transformers.AutoModel.from_config(config).save_pretrained(folder)
    if processor is not None:
        (folder / "preprocessor_config.json").write_text(json.dumps(processor))
    return str(folder)


def processor_settings(family, changes):
    """The family's preprocessor_config.json with `changes` applied (None removes the key)."""
    settings = {**FAMILIES[family].processor, **changes}
    return {key: value for key, value in settings.items() if value is not None}


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    root = tmp_path_factory.mktemp("teachers")
    return {
        name: save_model(root / name, FAMILIES[family].config, processor_settings(family, changes))
        for name, (family, changes) in CASES.items()
    }


@pytest.fixture(scope="module")
def teachers(paths):
    return {name: Teacher.from_pretrained(path) for name, path in paths.items()}


def images(n=5, channels=3, side=32, seed=0):
    return torch.rand(n, channels, side, side, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------------------------------------------------
# Every family
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_reads_pooling_size_and_normalisation_per_family(teachers, family):
    config, _, pooling, dim, side, mean, std, _ = FAMILIES[family]
    teacher = teachers[family]
    x = images(channels=teacher.num_channels)
    out = teacher(x)
    assert out.shape == (5, dim) and out.dtype == torch.float32
    assert (teacher.pooling, teacher.dim, teacher.image_size) == (pooling, dim, side)
    assert teacher.mean == pytest.approx(mean) and teacher.std == pytest.approx(std)
    assert teacher.describe() == {
        **teacher_provenance(teacher.name_or_path), "pooling": pooling, "dim": dim, "image_size": side,
        "mean": list(teacher.mean), "std": list(teacher.std), "model_type": config.model_type,
    }


@pytest.mark.parametrize("family", FAMILIES)
def test_is_frozen_deterministic_and_leaves_the_global_rng_alone(teachers, family):
    teacher = teachers[family]
    x = images(channels=teacher.num_channels).requires_grad_()
    rng = torch.get_rng_state()
    first, second = teacher(x), teacher(x)
    assert torch.equal(first, second)
    assert torch.equal(rng, torch.get_rng_state())
    assert not first.requires_grad and not any(p.requires_grad for p in teacher.parameters())


def test_stays_in_eval_mode_when_its_parent_trains(paths):
    parent = nn.ModuleDict({"learner": nn.Linear(2, 2), "teacher": Teacher.from_pretrained(paths["vit"])})
    parent.train()
    assert parent["learner"].training
    assert not any(module.training for module in parent["teacher"].modules())


def test_targets_can_be_regressed_in_an_autograd_graph(teachers):
    teacher, x = teachers["vit"], images()
    head = nn.Linear(3 * 32 * 32, teacher.dim)
    loss = F.mse_loss(head(x.flatten(1)), teacher(x))
    loss.backward()
    assert head.weight.grad.abs().sum() > 0


# ---------------------------------------------------------------------------------------------------------------------
# Against the raw model on hand-preprocessed input
# ---------------------------------------------------------------------------------------------------------------------


def normalise_by_hand(x, mean, std):
    channels = [(x[:, c] - mean[c % len(mean)]) / std[c % len(std)] for c in range(x.shape[1])]
    return torch.stack(channels, 1)


REFERENCES = {
    "vit": lambda model, pixels: model(pixel_values=pixels).last_hidden_state[:, 0],
    "resnet": lambda model, pixels: model(pixel_values=pixels).pooler_output[:, :, 0, 0],
    "clip": lambda model, pixels: model.vision_model(pixel_values=pixels).pooler_output,
}


# A bilinear resize (ViT's filter) of 40 -> 16; the crop-pct resize (ResNet) of 24 -> 22 and crop 20; CLIP unchanged.
@pytest.mark.parametrize("family, input_side", [("vit", 40), ("resnet", 24), ("clip", 16)])
def test_pooled_vector_matches_the_raw_model_on_hand_preprocessed_input(paths, teachers, family, input_side):
    processor = FAMILIES[family].processor
    teacher, x = teachers[family], images(side=input_side)
    if family == "resnet":  # Pillow's passes: the width, then the height, each clipped to the pixel range
        x = F.interpolate(x, size=(24, 22), mode="bicubic", antialias=True).clamp(0, 1)
        x = F.interpolate(x, size=(22, 22), mode="bicubic", antialias=True).clamp(0, 1)[..., 1:21, 1:21]
    resized = F.interpolate(x, size=(16, 16), mode="bilinear", antialias=True) if family == "vit" else x
    pixels = normalise_by_hand(resized, processor["image_mean"], processor["image_std"])
    model = transformers.AutoModel.from_pretrained(paths[family]).eval()
    with torch.no_grad():
        expected = REFERENCES[family](model, pixels)
    torch.testing.assert_close(teacher(images(side=input_side)), expected, rtol=1e-4, atol=1e-5)


def test_vit_mae_keeps_every_patch_in_order(paths, teachers):
    teacher, x = teachers["vit_mae"], images()
    model = transformers.AutoModel.from_pretrained(paths["vit_mae"], mask_ratio=0.0).eval()
    pixels = teacher.preprocess(x)
    with torch.no_grad():
        output = model(pixel_values=pixels, noise=torch.arange(4.0).expand(5, -1))
    assert output.last_hidden_state.shape[1] == 1 + 4
    torch.testing.assert_close(teacher(x), output.last_hidden_state[:, 0])


def test_full_clip_model_keeps_only_its_vision_tower(teachers):
    names = [name for name, _ in teachers["clip"].named_parameters()]
    assert names and not any("text" in name for name in names)


# ---------------------------------------------------------------------------------------------------------------------
# Against AutoImageProcessor (PIL) and the model, image by image
# ---------------------------------------------------------------------------------------------------------------------

POOL = {
    "cls": lambda output: output.last_hidden_state[:, 0],
    "pooler": lambda output: output.pooler_output.flatten(1),
    "mean": lambda output: output.last_hidden_state.mean((2, 3)),
}
SHAPES = [(3, 24, 24), (3, 40, 28), (1, 20, 36), (3, 12, 12)]  # (channels, height, width) of the real images


def pictures(n, channels, height, width, seed=0):
    """`(n, channels, height, width)` uint8: smooth random shapes plus noise, so every filter has edges to overshoot."""
    g = torch.Generator().manual_seed(seed)
    smooth = F.interpolate(torch.rand(n, channels, 4, 4, generator=g), size=(height, width), mode="bicubic")
    noise = torch.rand(n, channels, height, width, generator=g) - 0.5
    return ((smooth + 0.4 * noise).clamp(0, 1) * 255).round().to(torch.uint8)


def reference_features(path, spec, images):
    """What the model gives by the book: each uint8 `(c, H, W)` image as a PIL picture (grey made RGB for an RGB
    model, as `do_convert_rgb` does) -> AutoImageProcessor with the PIL backend -> the model -> the family's pooling."""
    processor = transformers.AutoImageProcessor.from_pretrained(path, backend="pil")
    model = transformers.AutoModel.from_pretrained(path).eval()
    mode = "RGB" if getattr(getattr(spec.config, "vision_config", spec.config), "num_channels", 3) == 3 else "L"
    features = []
    for image in images:
        array = image.permute(1, 2, 0).numpy()
        picture = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).convert(mode)
        with torch.no_grad():
            pixels = processor(picture, return_tensors="pt")["pixel_values"]
            features.append(POOL[spec.pooling](spec.forward(model, pixels)))
    return torch.cat(features)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda shape: "x".join(map(str, shape)))
@pytest.mark.parametrize("case", CASES)
def test_features_match_the_image_processor_and_the_model_for_every_image(paths, teachers, case, shape):
    spec = FAMILIES[CASES[case][0]]
    channels = min(shape[0], teachers[case].num_channels)
    images = pictures(4, channels, *shape[1:])
    expected = reference_features(paths[case], spec, images)
    actual = teachers[case](images.float() / 255)
    assert actual.shape == expected.shape
    assert F.cosine_similarity(actual, expected).min() >= 0.999
    # Features of tiny random encoders share a large common part, so also compare what tells the images apart.
    centre = expected.mean(0)
    assert F.cosine_similarity(actual - centre, expected - centre).min() >= 0.99


# ---------------------------------------------------------------------------------------------------------------------
# Channels, chunks, dtype
# ---------------------------------------------------------------------------------------------------------------------


def test_grey_images_are_repeated_for_an_rgb_encoder(teachers):
    grey = images(channels=1)
    torch.testing.assert_close(teachers["vit"](grey), teachers["vit"](grey.expand(-1, 3, -1, -1)), rtol=0, atol=0)


def test_rgb_images_are_turned_grey_for_a_grey_encoder(teachers):
    rgb = images()
    luma = (rgb * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    torch.testing.assert_close(teachers["resnet_grey"](rgb), teachers["resnet_grey"](luma))


def test_chunked_forward_equals_unchunked_and_bounds_the_encoder_batch(paths, teachers):
    chunked = Teacher.from_pretrained(paths["dinov2"])
    chunked.chunk_size = 3  # as the distiller sets it from --feature_chunk_size
    seen = []

    def record(module, args, kwargs):
        seen.append(len(kwargs["pixel_values"]))

    chunked.encoder.register_forward_pre_hook(record, with_kwargs=True)
    x = images(n=8)
    torch.testing.assert_close(chunked(x), teachers["dinov2"](x))
    assert seen == [3, 3, 2]


def test_follows_the_module_dtype_and_still_returns_float32(paths, teachers):
    double = Teacher.from_pretrained(paths["resnet"]).to(torch.float64)
    out = double(images())
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, teachers["resnet"](images()), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("pooling, family", [("mean", "vit"), ("mean", "resnet"), ("cls", "dinov2")])
def test_explicit_pooling_overrides_auto(paths, pooling, family):
    teacher = Teacher.from_pretrained(paths[family], pooling=pooling)
    model = transformers.AutoModel.from_pretrained(paths[family]).eval()
    with torch.no_grad():
        hidden = model(pixel_values=teacher.preprocess(images())).last_hidden_state
    expected = {"mean": hidden.mean(1) if hidden.ndim == 3 else hidden.mean((2, 3)), "cls": hidden[:, 0]}[pooling]
    assert teacher.pooling == pooling
    torch.testing.assert_close(teacher(images()), expected)


# ---------------------------------------------------------------------------------------------------------------------
# Fallbacks and errors
# ---------------------------------------------------------------------------------------------------------------------


def test_missing_preprocessor_config_warns_and_uses_config_size_with_half_normalisation(tmp_path, monkeypatch):
    path = save_model(tmp_path / "vit", FAMILIES["vit"].config)
    monkeypatch.setattr(transformers.AutoImageProcessor, "from_pretrained", lambda *a, **k: pytest.fail("loaded"))
    with pytest.warns(UserWarning, match="preprocessor_config.json"):
        teacher = Teacher.from_pretrained(path)
    assert (teacher.image_size, teacher.mean, teacher.std) == (16, (0.5,), (0.5,))
    assert teacher(images(side=28)).shape == (5, 16)


def test_missing_preprocessor_config_without_image_size_keeps_the_input_size(tmp_path):
    path = save_model(tmp_path / "resnet", FAMILIES["resnet"].config)
    with pytest.warns(UserWarning, match="the input size"):
        teacher = Teacher.from_pretrained(path)
    model = transformers.AutoModel.from_pretrained(path).eval()
    x = images(side=12)
    with torch.no_grad():
        expected = model(pixel_values=(x - 0.5) / 0.5).pooler_output.flatten(1)
    assert teacher.image_size is None
    torch.testing.assert_close(teacher(x), expected)


def test_unknown_path_is_a_one_line_config_error(tmp_path):
    missing = str(tmp_path / "no-such-teacher")
    with pytest.raises(ConfigError, match="neither a local folder nor a reachable Hub model") as err:
        Teacher.from_pretrained(missing)
    assert missing in str(err.value) and "--teacher" in str(err.value) and "\n" not in str(err.value)


def test_folder_without_a_model_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="check --teacher"):
        Teacher.from_pretrained(str(tmp_path))


def test_text_model_is_a_config_error(tmp_path):
    config = transformers.BertConfig(
        vocab_size=32, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    )
    path = save_model(tmp_path / "bert", config)
    with pytest.raises(ConfigError, match="without image input"):
        Teacher.from_pretrained(path)


@pytest.mark.parametrize("pooling, family", [("pooler", "vit_mae"), ("cls", "resnet")])
def test_pooling_the_output_cannot_give_is_a_config_error(paths, pooling, family):
    with pytest.raises(ConfigError, match="--teacher_pooling") as err:
        Teacher.from_pretrained(paths[family], pooling=pooling)
    assert paths[family] in str(err.value)


def test_unknown_pooling_is_a_config_error(paths):
    with pytest.raises(ConfigError, match="'max'"):
        Teacher.from_pretrained(paths["vit"], pooling="max")


# (family, settings that change (None removes one), what the error must name)
UNSUPPORTED = {
    "lanczos": ("vit", {"resample": 1}, "resample=1"),
    "box": ("convnext", {"resample": 4}, "resample=4"),
    "longest_edge": ("dinov2", {"size": {"longest_edge": 24}}, "size={'longest_edge': 24}"),
    "shortest_and_longest_edge": ("dinov2", {"size": {"shortest_edge": 24, "longest_edge": 40}}, "size="),
    "convnext_height_width": ("convnext", {"size": {"height": 24, "width": 24}}, "size="),
    "padding": ("vit", {"do_pad": True, "pad_size": {"height": 20, "width": 20}}, "do_pad=True"),
    "own_pipeline": ("vit", {"image_processor_type": "LevitImageProcessor"}, "image_processor_type='Levit"),
    "mean_per_channel": ("vit", {"image_mean": [0.5, 0.5]}, "image_mean=[0.5, 0.5]"),
    "unknown_processor": ("clip_vision", {"image_processor_type": None}, "image_processor_type"),
}


@pytest.mark.parametrize("case", UNSUPPORTED)
def test_a_processor_setting_it_cannot_honour_is_a_one_line_config_error_naming_it(tmp_path, case):
    family, changes, named = UNSUPPORTED[case]
    path = save_model(tmp_path / case, FAMILIES[family].config, processor_settings(family, changes))
    with pytest.raises(ConfigError) as err:
        Teacher.from_pretrained(path)
    assert named in str(err.value) and "\n" not in str(err.value)
