"""The ConvNet learners of the paper."""

import pytest
import torch

from hf_ssdd.learners import ConvNet


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
