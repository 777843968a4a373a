"""`evaluation.ridge_probe`: the ridge-probe R² finds a linear map and finds none in noise."""

from hf_ssdd.evaluation.ridge_probe import ridge_r2


def test_ridge_r2_is_near_one_for_linear_targets_and_near_zero_for_noise():
    import torch

    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 20, generator=g)
    assert ridge_r2(x, x @ torch.randn(20, 5, generator=g)) > 0.99
    assert ridge_r2(x, torch.randn(400, 5, generator=g)) < 0.1
