"""`batch_norm.recalibrate_batch_norm`: the running statistics become the images' own, and nothing else changes."""

import pytest
import torch
from torch import nn

from hf_ssdd.batch_norm import batch_norm_layers, recalibrate_batch_norm
from hf_ssdd.data import Normalization
from hf_ssdd.modeling import features, learner_config, new_model

NORMALIZATION = Normalization((0.25,), (0.5,))


class Tiny(nn.Module):
    """conv -> BN -> ReLU -> dropout -> pool -> BN1d, called like a transformers model."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3)
        self.drop, self.bn1d = nn.Dropout(0.5), nn.BatchNorm1d(3)

    def forward(self, pixel_values):
        x = self.drop(torch.relu(self.bn(self.conv(pixel_values))))
        return self.bn1d(x.mean((2, 3)))


def images(n=64, seed=0):
    return torch.randint(0, 256, (n, 1, 8, 8), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def test_the_running_statistics_become_those_of_the_images():
    model, x = Tiny(), images()
    with torch.no_grad():
        model.bn.running_mean.fill_(7.0), model.bn.running_var.fill_(0.01)
        conv = model.conv(NORMALIZATION.normalize(x))  # (n, 3, 6, 6): the input of the first BN
    assert recalibrate_batch_norm(model, x, NORMALIZATION, "cpu", chunk_size=len(x)) == 2
    assert torch.allclose(model.bn.running_mean, conv.mean((0, 2, 3)), atol=1e-5)
    assert torch.allclose(model.bn.running_var, conv.transpose(0, 1).flatten(1).var(1), atol=1e-5)


def test_equal_chunks_give_the_exact_mean_and_the_order_of_the_chunks_does_not_matter():
    model, x = Tiny(), images(60)
    recalibrate_batch_norm(model, x, NORMALIZATION, "cpu", chunk_size=60)
    whole = model.bn.running_mean.clone()
    recalibrate_batch_norm(model, x, NORMALIZATION, "cpu", chunk_size=20)  # three chunks of 20
    chunked = model.bn.running_mean.clone()
    recalibrate_batch_norm(model, x.flip(0), NORMALIZATION, "cpu", chunk_size=20)
    assert torch.allclose(chunked, whole, atol=1e-5) and torch.allclose(model.bn.running_mean, whole, atol=1e-5)


def test_weights_momentum_and_mode_are_kept_and_dropout_never_fires():
    model = Tiny().train()
    model.bn.momentum = 0.3
    weights = {k: v.clone() for k, v in model.state_dict().items() if "running" not in k and "num_batches" not in k}
    recalibrate_batch_norm(model, images(), NORMALIZATION, "cpu", chunk_size=16)
    assert not model.training and not any(m.training for m in model.modules())
    assert model.bn.momentum == 0.3 and model.bn1d.momentum == 0.1
    assert all(torch.equal(model.state_dict()[k], v) for k, v in weights.items())
    x = NORMALIZATION.normalize(images(8, seed=1))
    assert torch.equal(model(pixel_values=x), model(pixel_values=x)), "eval mode: deterministic"


def test_a_network_without_batch_norm_is_left_alone():
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 2))
    model.forward = lambda pixel_values: nn.Sequential.forward(model, pixel_values)
    assert recalibrate_batch_norm(model, images(), NORMALIZATION, "cpu") == 0 and not batch_norm_layers(model)


@pytest.mark.parametrize("arch", ["convnet", "resnet10"])
def test_a_never_trained_learner_gets_normalised_activations(arch):
    """The `scratch` case: with the initial statistics (zeros and ones) deep activations drift; re-estimated, every
    BatchNorm's output over the same images has zero mean and unit variance per channel."""
    torch.manual_seed(0)
    model = new_model(learner_config(arch, 1, 16, 4)).eval()
    x = torch.randint(0, 256, (128, 1, 16, 16), dtype=torch.uint8)
    outputs = []
    hooks = [layer.register_forward_hook(lambda m, i, o: outputs.append(o)) for layer in batch_norm_layers(model)]
    recalibrate_batch_norm(model, x, NORMALIZATION, "cpu", chunk_size=len(x))
    outputs.clear()
    with torch.no_grad():
        features(model, NORMALIZATION.normalize(x))
    for hook in hooks:
        hook.remove()
    assert outputs
    for out in outputs:
        channels = out.transpose(0, 1).flatten(1)  # (C, n * H * W)
        assert channels.mean(1).abs().max() < 1e-2
        assert (channels.var(1) - 1).abs().max() < 0.05
