import pytest
import torch
from torch import nn

from hf_ssdd.barlow_twins import SSLAugmentation, barlow_twins_loss, projector, standardize

# ---------------------------------------------------------------------------------------------------------------------
# Loss
# ---------------------------------------------------------------------------------------------------------------------


def naive_barlow_twins(z1, z2, lambda_offdiag, eps=1e-5):
    """Element by element: standardise each feature over the batch, correlate, sum the two terms."""
    n, d = z1.shape

    def standardized(z):
        out = torch.empty_like(z)
        for j in range(d):
            mean = sum(z[b, j] for b in range(n)) / n
            var = sum((z[b, j] - mean) ** 2 for b in range(n)) / n
            for b in range(n):
                out[b, j] = (z[b, j] - mean) / (var + eps) ** 0.5
        return out

    a, b = standardized(z1), standardized(z2)
    loss = 0.0
    for i in range(d):
        for j in range(d):
            c = sum(a[k, i] * b[k, j] for k in range(n)) / n
            loss += (1 - c) ** 2 if i == j else lambda_offdiag * c**2
    return loss


def test_loss_matches_naive_reference():
    g = torch.Generator().manual_seed(0)
    z1 = torch.randn(12, 5, generator=g, dtype=torch.float64) * 3 + 1
    z2 = z1 + torch.randn(12, 5, generator=g, dtype=torch.float64)
    for lam in (5e-3, 0.7):
        torch.testing.assert_close(barlow_twins_loss(z1, z2, lam), torch.as_tensor(naive_barlow_twins(z1, z2, lam)))


def orthogonal_features(n, d, seed=0):
    """`(n, d)` features with zero mean, unit variance and zero correlation with one another."""
    z = torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    q, _ = torch.linalg.qr(z - z.mean(0))
    return q * n**0.5


def test_loss_vanishes_for_identical_decorrelated_views():
    z = orthogonal_features(32, 8)
    assert barlow_twins_loss(z, z).item() == pytest.approx(0, abs=1e-6)
    assert barlow_twins_loss(3 * z + 2, z).item() == pytest.approx(0, abs=1e-6)  # invariant to affine rescaling


def test_loss_counts_each_redundancy_and_disagreement():
    a = orthogonal_features(32, 1)
    redundant = torch.cat([a, a, a], 1)  # three copies of one feature: every off-diagonal correlation is 1
    assert barlow_twins_loss(redundant, redundant, 0.1).item() == pytest.approx(0.1 * 6, rel=1e-4)
    z = orthogonal_features(32, 4)
    assert barlow_twins_loss(z, -z, 0.0).item() == pytest.approx(4 * 2**2, rel=1e-4)  # c_ii = -1 on every feature


def test_loss_is_non_negative():
    g = torch.Generator().manual_seed(1)
    for _ in range(20):
        z1, z2 = torch.randn(2, 16, 6, generator=g)
        assert barlow_twins_loss(z1, z2).item() >= 0


def test_loss_gradient_matches_finite_differences():
    g = torch.Generator().manual_seed(2)
    z1 = torch.randn(10, 4, generator=g, dtype=torch.float64, requires_grad=True)
    z2 = torch.randn(10, 4, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: barlow_twins_loss(a, b, 0.3), (z1, z2))


def test_standardize_gives_zero_mean_unit_variance():
    z = standardize(torch.randn(64, 3, dtype=torch.float64) * 5 - 2)
    torch.testing.assert_close(z.mean(0), torch.zeros(3, dtype=torch.float64))
    torch.testing.assert_close(z.var(0, unbiased=False), torch.ones(3, dtype=torch.float64), atol=1e-5, rtol=0)


# ---------------------------------------------------------------------------------------------------------------------
# Projector
# ---------------------------------------------------------------------------------------------------------------------


def test_projector_is_linear_bn_relu_twice_then_linear():
    head = projector(16, (32, 24, 8))
    kinds = [type(layer) for layer in head]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    assert [layer.out_features for layer in head if isinstance(layer, nn.Linear)] == [32, 24, 8]
    assert head(torch.randn(5, 16)).shape == (5, 8)


# ---------------------------------------------------------------------------------------------------------------------
# Augmentation
# ---------------------------------------------------------------------------------------------------------------------

GEOMETRY_ONLY = dict(brightness=0.0, contrast=0.0, saturation=0.0, grayscale_prob=0.0)


def images(n=6, c=1, side=16, seed=0):
    return torch.rand(n, c, side, side, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("channels", [1, 3])
def test_views_have_the_requested_shape_and_stay_in_range(channels):
    x = images(c=channels)
    for size in (16, 32):
        view = SSLAugmentation()(x, torch.Generator().manual_seed(0), size)
        assert view.shape == (6, channels, size, size)
        assert view.min() >= 0 and view.max() <= 1


def test_views_are_determined_by_the_generator():
    x, augment = images(c=3), SSLAugmentation()
    first = augment(x, torch.Generator().manual_seed(5))
    assert torch.equal(first, augment(x, torch.Generator().manual_seed(5)))
    assert not torch.allclose(first, augment(x, torch.Generator().manual_seed(6)))


def test_full_crop_without_flip_or_jitter_is_the_identity():
    x = images()
    augment = SSLAugmentation(scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=False, **GEOMETRY_ONLY)
    torch.testing.assert_close(augment(x, torch.Generator().manual_seed(0)), x)


def test_flip_mirrors_some_images_and_keeps_the_others():
    x = images(n=32)
    augment = SSLAugmentation(scale=(1.0, 1.0), ratio=(1.0, 1.0), **GEOMETRY_ONLY)
    view = augment(x, torch.Generator().manual_seed(0))
    mirrored = torch.tensor([torch.allclose(v, i.flip(-1), atol=1e-6) for v, i in zip(view, x)])
    kept = torch.tensor([torch.allclose(v, i, atol=1e-6) for v, i in zip(view, x)])
    assert (mirrored ^ kept).all() and 0 < mirrored.sum() < 32


def test_crop_zooms_into_a_different_region_per_image():
    x = images(n=1).expand(8, -1, -1, -1)  # one image, eight times
    view = SSLAugmentation(scale=(0.25, 0.25), ratio=(1.0, 1.0), flip=False, **GEOMETRY_ONLY)(
        x, torch.Generator().manual_seed(0)
    )
    assert not torch.allclose(view[0], x[0], atol=0.05)
    assert all(not torch.allclose(view[0], v) for v in view[1:])


def test_colour_jitter_scales_brightness_per_image():
    x = torch.full((64, 1, 4, 4), 0.5)
    augment = SSLAugmentation(scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=False, contrast=0.0, jitter_prob=1.0)
    view = augment(x, torch.Generator().manual_seed(0))
    level = view.mean((1, 2, 3))
    assert torch.allclose(view, level.view(-1, 1, 1, 1).expand_as(view))  # a flat image stays flat
    assert level.min() >= 0.5 * 0.6 - 1e-6 and level.max() <= 0.5 * 1.4 + 1e-6 and level.std() > 0.05


def test_grayscale_makes_rgb_channels_equal():
    view = SSLAugmentation(grayscale_prob=1.0)(images(c=3), torch.Generator().manual_seed(0))
    torch.testing.assert_close(view[:, 0], view[:, 1])
    torch.testing.assert_close(view[:, 1], view[:, 2])
