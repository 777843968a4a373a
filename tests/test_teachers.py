"""Teacher: tiny random encoders of every supported family, saved to disk and loaded back by path."""

import json
from typing import NamedTuple

import pytest
import torch
import torch.nn.functional as F
import transformers
from torch import nn

from hf_ssdd.config import ConfigError
from hf_ssdd.teachers import Teacher

IMAGENET = {"image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}
CLIP = {"image_mean": [0.481, 0.458, 0.408], "image_std": [0.269, 0.261, 0.276]}
TRANSFORMER = dict(num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, patch_size=8)
CLIP_TEXT = dict(
    vocab_size=32, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
    max_position_embeddings=8, bos_token_id=0, eos_token_id=1, pad_token_id=2,
)


class Spec(NamedTuple):
    config: transformers.PreTrainedConfig
    processor: dict  # written by hand as preprocessor_config.json
    pooling: str  # what "auto" must resolve to
    dim: int
    side: int  # read from the processor: crop side if it centre-crops, else the size
    mean: tuple
    std: tuple


FAMILIES = {
    "vit": Spec(
        transformers.ViTConfig(image_size=16, hidden_size=16, **TRANSFORMER),
        {"do_resize": True, "size": {"height": 16, "width": 16}, "image_mean": [0.5] * 3, "image_std": [0.5] * 3},
        "cls", 16, 16, (0.5,) * 3, (0.5,) * 3,
    ),
    "dinov2": Spec(
        transformers.Dinov2Config(image_size=16, hidden_size=24, **TRANSFORMER),
        {"size": {"shortest_edge": 32}, "do_center_crop": True, "crop_size": {"height": 24, "width": 24}, **IMAGENET},
        "pooler", 24, 24, tuple(IMAGENET["image_mean"]), tuple(IMAGENET["image_std"]),
    ),
    "clip_vision": Spec(
        transformers.CLIPVisionConfig(image_size=16, hidden_size=16, projection_dim=8, **TRANSFORMER),
        {"size": {"shortest_edge": 16}, "do_center_crop": True, "crop_size": 16, **CLIP},
        "pooler", 16, 16, tuple(CLIP["image_mean"]), tuple(CLIP["image_std"]),
    ),
    "clip": Spec(
        transformers.CLIPConfig(
            text_config=CLIP_TEXT, vision_config=dict(image_size=16, hidden_size=32, **TRANSFORMER), projection_dim=8
        ),
        {"size": {"shortest_edge": 16}, "do_center_crop": True, "crop_size": {"height": 16, "width": 16}, **CLIP},
        "pooler", 32, 16, tuple(CLIP["image_mean"]), tuple(CLIP["image_std"]),
    ),
    "resnet": Spec(
        transformers.ResNetConfig(embedding_size=8, hidden_sizes=[8, 12], depths=[1, 1]),
        {"size": 20, "do_center_crop": False, "crop_size": 8, **IMAGENET},
        "pooler", 12, 20, tuple(IMAGENET["image_mean"]), tuple(IMAGENET["image_std"]),
    ),
    "convnext": Spec(
        transformers.ConvNextConfig(hidden_sizes=[8, 20], depths=[1, 1], num_stages=2),
        {"size": {"shortest_edge": 24}, "do_normalize": False, **IMAGENET},
        "pooler", 20, 24, (0.0,), (1.0,),
    ),
    "vit_mae": Spec(
        transformers.ViTMAEConfig(image_size=16, hidden_size=16, mask_ratio=0.75, **TRANSFORMER),
        {"size": {"height": 16, "width": 16}, "image_mean": [0.4, 0.5, 0.6], "image_std": [0.2, 0.3, 0.4]},
        "cls", 16, 16, (0.4, 0.5, 0.6), (0.2, 0.3, 0.4),
    ),
    "resnet_grey": Spec(
        transformers.ResNetConfig(num_channels=1, embedding_size=8, hidden_sizes=[8, 12], depths=[1, 1]),
        {"size": 16, "image_mean": [0.3], "image_std": [0.2]},
        "pooler", 12, 16, (0.3,), (0.2,),
    ),
}


def save_model(folder, config, processor=None):
    torch.manual_seed(0)
    transformers.AutoModel.from_config(config).save_pretrained(folder)
    if processor is not None:
        (folder / "preprocessor_config.json").write_text(json.dumps(processor))
    return str(folder)


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    root = tmp_path_factory.mktemp("teachers")
    return {name: save_model(root / name, spec.config, spec.processor) for name, spec in FAMILIES.items()}


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
    config, _, pooling, dim, side, mean, std = FAMILIES[family]
    teacher = teachers[family]
    x = images(channels=teacher.num_channels)
    out = teacher(x)
    assert out.shape == (5, dim) and out.dtype == torch.float32
    assert (teacher.pooling, teacher.dim, teacher.image_size) == (pooling, dim, side)
    assert teacher.mean == pytest.approx(mean) and teacher.std == pytest.approx(std)
    assert teacher.describe() == {
        "id": teacher.name_or_path, "revision": None, "pooling": pooling, "dim": dim, "image_size": side,
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


@pytest.mark.parametrize("family, input_side", [("vit", 40), ("resnet", 12), ("clip", 16)])
def test_pooled_vector_matches_the_raw_model_on_hand_preprocessed_input(paths, teachers, family, input_side):
    processor = FAMILIES[family].processor
    teacher, x = teachers[family], images(side=input_side)
    side = teacher.image_size
    resized = F.interpolate(x, size=(side, side), mode="bilinear", antialias=True) if input_side != side else x
    pixels = normalise_by_hand(resized, processor["image_mean"], processor["image_std"])
    model = transformers.AutoModel.from_pretrained(paths[family]).eval()
    with torch.no_grad():
        expected = REFERENCES[family](model, pixels)
    torch.testing.assert_close(teacher(x), expected)


def test_vit_mae_keeps_every_patch_in_order(paths, teachers):
    teacher, x = teachers["vit_mae"], images()
    model = transformers.AutoModel.from_pretrained(paths["vit_mae"], mask_ratio=0.0).eval()
    spec = FAMILIES["vit_mae"]
    pixels = normalise_by_hand(F.interpolate(x, size=(16, 16), mode="bilinear", antialias=True), spec.mean, spec.std)
    with torch.no_grad():
        output = model(pixel_values=pixels, noise=torch.arange(4.0).expand(5, -1))
    assert output.last_hidden_state.shape[1] == 1 + 4
    torch.testing.assert_close(teacher(x), output.last_hidden_state[:, 0])


def test_full_clip_model_keeps_only_its_vision_tower(teachers):
    names = [name for name, _ in teachers["clip"].named_parameters()]
    assert names and not any("text" in name for name in names)


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
    chunked = Teacher.from_pretrained(paths["dinov2"], chunk_size=3)
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


def test_missing_preprocessor_config_warns_and_uses_config_size_with_half_normalisation(tmp_path):
    path = save_model(tmp_path / "vit", FAMILIES["vit"].config)
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
