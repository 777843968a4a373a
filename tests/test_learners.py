"""The learners: the paper's ConvNet and the architectures of its Table 3, built by name."""

import pytest
import torch

from hf_ssdd.config import ConfigError
from hf_ssdd.learners import ARCHITECTURES, BasicBlock, ConvNet, Learner, ResNet, build_learner


@pytest.mark.parametrize(
    "channels, resolution, depth, width, feature_dim",
    [(3, 32, 3, 128, 512 * 4 * 4), (3, 64, 4, 64, 512 * 4 * 4), (1, 28, 3, 8, 32 * 3 * 3)],
)
def test_feature_size_follows_depth_width_and_resolution(channels, resolution, depth, width, feature_dim):
    net = ConvNet(channels, resolution, depth, width, out_features=5)
    assert net.feature_dim == feature_dim
    x = torch.randn(2, channels, resolution, resolution)
    assert net.embed(x).shape == (2, feature_dim)
    assert net(x).shape == (2, 5)


def test_channels_double_per_block():
    net = ConvNet(3, 32, depth=3, width=128)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [128, 256, 512]


@pytest.mark.parametrize("norm, layer", [("batch", torch.nn.BatchNorm2d), ("instance", torch.nn.GroupNorm)])
def test_norm_and_pooling_are_configurable(norm, layer):
    net = ConvNet(1, 16, depth=2, width=4, norm=norm, pooling="max")
    assert any(isinstance(m, layer) for m in net.modules())
    assert any(isinstance(m, torch.nn.MaxPool2d) for m in net.modules())


def test_eval_mode_features_do_not_depend_on_the_batch():
    net = ConvNet(1, 16, depth=2, width=4).eval()
    x = torch.randn(6, 1, 16, 16)
    torch.testing.assert_close(net.embed(x)[:2], net.embed(x[:2]))


def test_too_deep_for_the_resolution_is_an_error():
    with pytest.raises(ValueError, match="too small"):
        ConvNet(1, 4, depth=3)


# --- every architecture, by name --------------------------------------------------------------------------------------

ARCHS = list(ARCHITECTURES)
TINY = {"width": 4}  # every architecture takes `width`; 4 keeps each forward pass to milliseconds
SHAPES = [(1, 28), (3, 28), (3, 32), (3, 64)]  # (channels, resolution)


def test_the_paper_architectures_are_registered():
    assert ARCHS == ["convnet", "vgg11", "alexnet", "mobilenet_v2", "resnet10", "resnet18"]


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("channels, resolution", SHAPES)
def test_embed_gives_feature_dim_columns(arch, channels, resolution):
    net = build_learner(arch, channels, resolution, **TINY)
    assert isinstance(net, Learner) and net.head is None
    assert net.embed(torch.randn(2, channels, resolution, resolution)).shape == (2, net.feature_dim)


@pytest.mark.parametrize("arch", ARCHS)
def test_head_maps_features_to_out_features(arch):
    net = build_learner(arch, 1, 28, out_features=5, **TINY)
    assert net(torch.randn(2, 1, 28, 28)).shape == (2, 5)


@pytest.mark.parametrize("arch", ARCHS)
def test_without_a_head_forward_says_to_use_embed(arch):
    with pytest.raises(RuntimeError, match="embed"):
        build_learner(arch, 1, 28, **TINY)(torch.randn(2, 1, 28, 28))


@pytest.mark.parametrize("arch", ARCHS)
def test_gradients_reach_the_input(arch):
    net = build_learner(arch, 3, 32, out_features=3, **TINY)
    x = torch.randn(2, 3, 32, 32, requires_grad=True)
    net(x).square().sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("arch", ARCHS)
def test_eval_mode_features_of_every_architecture_do_not_depend_on_the_batch(arch):
    net = build_learner(arch, 1, 28, **TINY).eval()
    x = torch.randn(4, 1, 28, 28)
    torch.testing.assert_close(net.embed(x)[:1], net.embed(x[:1]))


@pytest.mark.parametrize("arch", ARCHS)
def test_every_parameter_is_covered_by_some_reset_parameters(arch):
    """The pool re-initialises a learner by calling `reset_parameters()` on each submodule that has it."""
    net = build_learner(arch, 3, 32, out_features=3, **TINY)
    covered = {id(p) for m in net.modules() if hasattr(m, "reset_parameters") for p in m.parameters(recurse=False)}
    assert all(id(p) in covered for p in net.parameters())


@pytest.mark.parametrize(
    "arch, feature_dim", [("convnet", 512 * 4 * 4), ("vgg11", 512), ("alexnet", 256 * 4 * 4), ("mobilenet_v2", 1280),
                          ("resnet10", 512), ("resnet18", 512)],
)  # fmt: skip
def test_default_widths_are_the_standard_ones(arch, feature_dim):
    assert build_learner(arch, 3, 32).feature_dim == feature_dim


def test_resnet10_has_one_block_per_stage_and_resnet18_two():
    blocks = lambda net: sum(isinstance(m, BasicBlock) for m in net.modules())  # noqa: E731
    params = lambda net: sum(p.numel() for p in net.parameters())  # noqa: E731
    r10, r18 = build_learner("resnet10", 3, 32, width=8), build_learner("resnet18", 3, 32, width=8)
    assert (blocks(r10), blocks(r18)) == (4, 8)
    assert params(r10) < params(r18) and r10.feature_dim == r18.feature_dim == 64
    assert isinstance(r10, ResNet) and isinstance(r18, ResNet)


def test_unknown_arch_is_a_config_error_naming_the_choices():
    with pytest.raises(ConfigError, match="'resnet50' is not one of convnet, vgg11, .*resnet18"):
        build_learner("resnet50", 3, 32)


def test_an_option_the_arch_does_not_take_is_a_config_error_naming_its_options():
    with pytest.raises(ConfigError, match="'vgg11' does not take depth; its options are: width"):
        build_learner("vgg11", 3, 32, depth=3)
    with pytest.raises(ConfigError, match="blocks"):
        build_learner("resnet10", 3, 32, blocks=(2, 2, 2, 2))


@pytest.mark.parametrize("arch", ARCHS)
def test_too_small_a_resolution_is_a_config_error_naming_the_minimum(arch):
    with pytest.raises(ConfigError, match=r"resolution=4 is too small .* use >= \d+"):
        build_learner(arch, 3, 4, **TINY)


@pytest.mark.parametrize("arch, smallest", [("convnet", 8), ("vgg11", 16), ("alexnet", 8), ("mobilenet_v2", 8),
                                            ("resnet10", 8), ("resnet18", 8)])  # fmt: skip
def test_the_smallest_allowed_resolution_works(arch, smallest):
    net = build_learner(arch, 1, smallest, **TINY)
    assert net.embed(torch.randn(2, 1, smallest, smallest)).shape == (2, net.feature_dim)
    with pytest.raises(ConfigError):
        build_learner(arch, 1, smallest - 1, **TINY)


def test_bad_convnet_norm_is_a_config_error():
    with pytest.raises(ConfigError, match="norm='layer'"):
        build_learner("convnet", 3, 32, norm="layer")
