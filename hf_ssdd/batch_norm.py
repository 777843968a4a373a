"""BatchNorm statistics re-estimated on given images, so that a frozen network's features are read, not its
calibration.

A network probed in eval mode normalises with the running statistics it kept while training. Those describe its
training inputs: for a learner pre-trained on 10 images they are 10 images' statistics, and for a network never
trained (`scratch`) they are the initial zeros and ones, which leave deep activations unnormalised and its
features degenerate. A probe would then score the calibration as much as the representation. Re-estimating every
BatchNorm layer's statistics on the same images, for every network, before any probe puts them on one footing
(Ioffe & Szegedy 2015 estimate the population statistics the same way after training).

    recalibrate_batch_norm(model, held_out_images, normalization, device)   # then model is in eval mode
"""

from __future__ import annotations

import torch
from torch import nn

BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def batch_norm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The model's BatchNorm layers that keep running statistics."""
    return [m for m in model.modules() if isinstance(m, BATCH_NORMS) and m.track_running_stats]


def recalibrate_batch_norm(model: nn.Module, images: torch.Tensor, normalization, device, chunk_size: int = 500
                           ) -> int:
    """Replace the running mean and variance of every BatchNorm layer of `model` by their averages over `images`
    `(n, C, H, W)` (uint8, or float in [0, 1]; normalised with `normalization`), in near-equal chunks of at most
    `chunk_size`; leave the model in eval mode; return the number of layers re-estimated.

    The averages are cumulative (`momentum=None`) and weigh every chunk alike, so with equal chunks the mean is the
    images' exact mean; each chunk's variance is the unbiased one, as in training. Nothing else changes: the weights,
    and every other layer, which stays in eval mode while the statistics are gathered (no dropout).
    """
    layers = batch_norm_layers(model)
    if not layers:
        return 0
    model.eval()
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None
        layer.train()
    try:
        with torch.no_grad():
            for chunk in images.tensor_split(-(-len(images) // chunk_size)):
                model(pixel_values=normalization.normalize(chunk.to(device)))
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
        model.eval()
    return len(layers)
