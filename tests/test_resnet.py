"""The torchvision-layout ResNets: shapes per preset and stem, torchvision's names and sizes, and loading with and
without hf-ssdd."""

import os
import subprocess
import sys

import pytest
import torch

from hf_ssdd.resnet import PRESETS, TorchvisionResNetConfig, TorchvisionResNetModel

# side of the feature map of a 32x32 input after each stage: CIFAR stem 32 -> 34 (3x3, stride 1, padding 2), no
# max-pool; ImageNet stem 32 -> 16 (7x7, stride 2) -> 8 (max-pool); then stride 2 from the second stage on
SIDES = {"cifar": [34, 17, 9, 5], "imagenet": [8, 4, 2, 1]}
FEATURES = {"resnet18": 512, "resnet34": 512, "resnet50": 2048}
# torchvision's parameter counts (11,689,512 / 21,797,672 / 25,557,032) without `fc`, and with a 3x3 stem
PARAMETERS = {"resnet18": 11_176_512, "resnet34": 21_284_672, "resnet50": 23_508_032}
STEM_DIFFERENCE = 64 * 3 * (7 * 7 - 3 * 3)


def narrow(name: str, **overrides) -> TorchvisionResNetModel:
    """`name` with 16-32-64-128 channels (bottleneck blocks 4-8-16-32 wide inside)."""
    config = TorchvisionResNetConfig.preset(name, hidden_sizes=[16, 32, 64, 128], **overrides)
    return TorchvisionResNetModel(config).eval()


@pytest.mark.parametrize("stem", SIDES)
@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_and_stem_gives_the_expected_shapes_and_sizes(name, stem):
    model = TorchvisionResNetModel(TorchvisionResNetConfig.preset(name, stem=stem)).eval()
    with torch.no_grad():
        output = model(pixel_values=torch.rand(2, 3, 32, 32))
    side = SIDES[stem][-1]
    assert output.last_hidden_state.shape == (2, FEATURES[name], side, side)
    assert output.pooler_output.shape == (2, FEATURES[name])
    torch.testing.assert_close(output.pooler_output, output.last_hidden_state.mean((2, 3)))
    expected = PARAMETERS[name] - (STEM_DIFFERENCE if stem == "cifar" else 0)
    assert sum(p.numel() for p in model.parameters()) == expected


def test_a_cifar_stem_with_stride_2_halves_the_input():
    model = narrow("resnet18", stem_stride=2)
    assert (model.conv1.stride, model.conv1.padding) == ((2, 2), (2, 2))
    assert model(pixel_values=torch.rand(1, 3, 32, 32)).last_hidden_state.shape == (1, 128, 3, 3)  # 17, 9, 5, 3


def test_stems_are_the_authors_and_torchvisions():
    cifar, imagenet = narrow("resnet18"), narrow("resnet18", stem="imagenet")
    assert (cifar.conv1.kernel_size, cifar.conv1.stride, cifar.conv1.padding) == ((3, 3), (1, 1), (2, 2))
    assert isinstance(cifar.maxpool, torch.nn.Identity)
    assert (imagenet.conv1.kernel_size, imagenet.conv1.stride, imagenet.conv1.padding) == ((7, 7), (2, 2), (3, 3))
    assert isinstance(imagenet.maxpool, torch.nn.MaxPool2d)


def test_module_names_are_torchvisions():
    basic, bottleneck = narrow("resnet18").state_dict(), narrow("resnet50").state_dict()
    assert {"conv1.weight", "bn1.running_var", "layer1.0.conv1.weight", "layer1.1.bn2.bias",
            "layer2.0.downsample.0.weight", "layer4.1.bn2.num_batches_tracked"} <= set(basic)
    assert not any(k.startswith("layer1.0.downsample") or "conv3" in k for k in basic)
    assert {"layer1.0.conv3.weight", "layer1.0.downsample.1.running_mean", "layer4.2.bn3.weight"} <= set(bottleneck)
    assert bottleneck["layer1.0.conv1.weight"].shape == (4, 4, 1, 1)  # 16 // 4 wide inside the first stage
    assert bottleneck["layer4.2.conv3.weight"].shape == (128, 32, 1, 1)


def test_custom_depths_give_as_many_stages():
    model = TorchvisionResNetModel(TorchvisionResNetConfig(hidden_sizes=[8, 16, 32], depths=[1, 2, 1]))
    assert [len(getattr(model, f"layer{i}")) for i in (1, 2, 3)] == [1, 2, 1] and not hasattr(model, "layer4")
    assert model(pixel_values=torch.rand(1, 3, 16, 16)).pooler_output.shape == (1, 32)


@pytest.mark.parametrize("bad, message", [
    (dict(stem="tiny"), "stem='tiny'"),
    (dict(hidden_sizes=[8, 16], depths=[1]), "one positive entry per stage"),
    (dict(block="bottleneck", hidden_sizes=[6], depths=[1]), "multiples of 4"),
])
def test_a_wrong_config_is_an_error_naming_the_field(bad, message):
    with pytest.raises(ValueError, match=message):
        TorchvisionResNetConfig(**bad)


@pytest.fixture
def saved(tmp_path):
    """A narrow ResNet-18 with moved weights and BatchNorm statistics, saved; with an input and its features."""
    torch.manual_seed(0)
    model = narrow("resnet18")
    model.train()(pixel_values=torch.randn(8, 3, 32, 32) * 2 + 1)  # running statistics move away from (0, 1)
    model.eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        expected = model(pixel_values=x).pooler_output
    model.save_pretrained(tmp_path / "model")
    torch.save({"x": x, "expected": expected}, tmp_path / "io.pt")
    return tmp_path


def test_automodel_loads_it_after_importing_hf_ssdd(saved):
    from transformers import AutoModel

    io = torch.load(saved / "io.pt")
    loaded = AutoModel.from_pretrained(saved / "model").eval()
    assert type(loaded) is TorchvisionResNetModel
    with torch.no_grad():
        torch.testing.assert_close(loaded(pixel_values=io["x"]).pooler_output, io["expected"], rtol=0, atol=0)


def test_automodel_loads_it_with_trust_remote_code_and_no_hf_ssdd(saved):
    code = f"""
import sys, torch
from transformers import AutoModel
model = AutoModel.from_pretrained({str(saved / "model")!r}, trust_remote_code=True).eval()
io = torch.load({str(saved / "io.pt")!r})
with torch.no_grad():
    diff = (model(pixel_values=io["x"]).pooler_output - io["expected"]).abs().max().item()
assert not any(name.startswith("hf_ssdd") for name in sys.modules), "hf_ssdd was imported"
print(type(model).__module__, diff)
"""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(saved / "modules"), "PYTHONPATH": ""}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=saved)
    assert result.returncode == 0, result.stderr
    module, diff = result.stdout.split()
    assert module.startswith("transformers_modules.") and float(diff) == 0.0
