"""Differentiable siamese augmentation: DSA's six families at DSA's strengths, one family per batch, each image its
own draw, the same draws on any number of processes, and differentiable in the pixels."""

import math

import pytest
import torch

from hf_ssdd.dsa import FAMILIES, SCALE, SiameseAugmentation


def draws(family: str, *rows) -> SiameseAugmentation:
    return SiameseAugmentation(family, torch.tensor(rows, dtype=torch.float32))


def test_a_batch_draws_one_family_and_a_strength_per_image_reproducibly():
    samples = [SiameseAugmentation.sample(5, torch.Generator().manual_seed(seed)) for seed in range(200)]
    assert {s.family for s in samples} == set(FAMILIES), "every family is drawn"
    again = SiameseAugmentation.sample(5, torch.Generator().manual_seed(7))
    assert again.family == samples[7].family and torch.equal(again.params, samples[7].params)
    assert all(s.params.shape == (5, FAMILIES[s.family][1]) for s in samples)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_process_transforms_its_share_of_the_batch_as_the_whole_batch_would(family):
    """Draws are made for the global batch and sliced, so two processes see what one process would."""
    x = torch.randn(6, 3, 10, 10)
    views = SiameseAugmentation(family, torch.rand(6, FAMILIES[family][1], generator=torch.Generator().manual_seed(2)))
    whole = views.apply(x)
    halves = torch.cat([views[:3].apply(x[:3]), views[3:].apply(x[3:])])
    assert whole.shape == x.shape
    torch.testing.assert_close(halves, whole)


def test_brightness_adds_up_to_half_and_saturation_leaves_grey_images_alone():
    x = torch.rand(2, 1, 6, 6)
    out = draws("color", [1.0, 0.3, 0.5], [0.0, 0.9, 0.5]).apply(x)  # contrast x1 (u = 0.5)
    torch.testing.assert_close(out, x + torch.tensor([0.5, -0.5]).view(2, 1, 1, 1))


def test_saturation_scales_the_distance_to_grey_and_contrast_the_distance_to_the_mean():
    x = torch.rand(1, 3, 5, 5)
    grey = x.mean(1, keepdim=True)
    torch.testing.assert_close(draws("color", [0.5, 0.25, 0.5]).apply(x), grey + 0.5 * (x - grey))  # x U(0, 2) at 1/4
    torch.testing.assert_close(draws("color", [0.5, 0.5, 1.0]).apply(x), x.mean() + 1.5 * (x - x.mean()))


def test_crop_shifts_by_whole_pixels_up_to_an_eighth_of_the_side_and_pads_with_zero():
    x = torch.arange(1.0, 257.0).view(1, 1, 16, 16)  # shifts of up to 2 pixels
    out = draws("crop", [0.999, 0.0]).apply(x)  # down by 2, left by 2
    expected = torch.zeros_like(x)
    expected[..., 2:, :14] = x[..., :14, 2:]
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(draws("crop", [0.5, 0.5]).apply(x), x)  # the middle draw: no shift


def test_cutout_zeroes_a_square_of_half_the_side():
    x = torch.ones(1, 2, 12, 12)
    out = draws("cutout", [0.5, 0.5]).apply(x)  # centre pixel (6, 6)
    assert (out == 0).all(0).all(0).sum() == 36 and out[0, :, 3:9, 3:9].abs().sum() == 0
    corner = draws("cutout", [0.0, 0.0]).apply(x)  # clipped at the border
    assert (corner[0, 0] == 0).sum() == 9 and corner[0, 0, :3, :3].abs().sum() == 0


def test_flip_mirrors_half_the_images():
    x = torch.randn(2, 1, 4, 4)
    out = draws("flip", [0.2], [0.7]).apply(x)
    assert torch.equal(out[0], x[0].flip(-1)) and torch.equal(out[1], x[1])


def test_the_neutral_scale_and_rotation_leave_the_image_as_it_is():
    x = torch.randn(1, 1, 9, 9)
    neutral_scale = (1 - 1 / SCALE) / (SCALE - 1 / SCALE)
    torch.testing.assert_close(draws("scale", [neutral_scale, neutral_scale]).apply(x), x, atol=1e-5, rtol=0)
    torch.testing.assert_close(draws("rotate", [0.5]).apply(x), x, atol=1e-5, rtol=0)


def test_rotation_turns_the_image_by_up_to_15_degrees_about_its_centre():
    x = torch.zeros(1, 1, 41, 41)
    x[..., 20, 20:] = 1.0  # a ray from the centre to the right edge
    out = draws("rotate", [1.0]).apply(x)[0, 0]  # +15 degrees
    ys, xs = torch.nonzero(out > 0.5, as_tuple=True)
    angles = torch.atan2((ys - 20).float(), (xs - 20).float())[xs > 28]
    assert angles.abs().mean() == pytest.approx(math.radians(15), abs=math.radians(3))
    assert out[20, 20] > 0.5, "the centre stays where it was"


def test_scaling_stretches_each_axis_by_at_most_1_2():
    x = torch.zeros(1, 1, 41, 41)
    x[..., 20, 10:31] = 1.0  # a horizontal bar 21 pixels long
    wide = draws("scale", [0.0, 0.5]).apply(x)[0, 0]  # x factor 1/1.2 of the sampling grid: the bar grows 1.2x
    assert (wide[20] > 0.5).sum().item() == pytest.approx(21 * SCALE, abs=2)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_is_differentiable_in_the_pixels(family):
    x = torch.rand(2, 3, 6, 6, dtype=torch.float64, requires_grad=True)
    views = SiameseAugmentation(family, torch.rand(2, FAMILIES[family][1], generator=torch.Generator().manual_seed(3)))
    assert torch.autograd.gradcheck(lambda v: views.apply(v), (x,))
