"""The model pool: warm-up, online steps, reset with step count back to zero, reproducibility."""

import copy

import torch

from hf_ssdd.learners import ConvNet
from hf_ssdd.methods.krr_st.pool import ModelPool


def make_pool(**kwargs):
    make = lambda: ConvNet(channels=1, resolution=8, depth=1, width=4, out_features=3)  # noqa: E731
    return ModelPool(make, **{"size": 3, "max_steps": 5, "seed": 0, **kwargs})


def synthetic():
    g = torch.Generator().manual_seed(1)
    return torch.randn(6, 1, 8, 8, generator=g), torch.randn(6, 3, generator=g)


def test_warm_up_trains_each_member_between_1_and_U_minus_1_steps():
    pool = make_pool(size=8, max_steps=5)
    pool.warm_up(*synthetic())
    assert all(1 <= s < 5 for s in pool.steps)
    assert pool.resets == [0] * 8
    assert len(set(pool.steps)) > 1, "warm-up lengths should differ between members"


def test_train_step_counts_and_lowers_the_loss():
    pool = make_pool(max_steps=100)
    x, y = synthetic()
    losses = [pool.train_step(0, x, y) for _ in range(20)]
    assert pool.steps[0] == 20 and pool.steps[1:] == [0, 0]
    assert losses[-1] < losses[0]


def test_member_is_reinitialised_and_its_step_count_reset_after_U_steps():
    pool = make_pool(max_steps=5)
    x, y = synthetic()
    initial = {k: v.clone() for k, v in pool.models[0].state_dict().items()}
    for _ in range(4):
        pool.train_step(0, x, y)
    assert pool.steps[0] == 4
    trained = pool.models[0].features[0].weight.clone()
    pool.train_step(0, x, y)  # the U-th step
    assert pool.steps[0] == 0, "step count must go back to 0 after a reset (the authors' bug)"
    assert pool.resets[0] == 1
    fresh = pool.models[0].features[0].weight
    assert not torch.equal(fresh, trained)
    assert not torch.equal(fresh, initial["features.0.weight"]), "a reset draws new initial weights"
    assert len(pool.optimizers[0].state) == 0, "the optimiser (momentum) starts afresh with the new model"
    for _ in range(5):
        pool.train_step(0, x, y)
    assert pool.steps[0] == 0 and pool.resets[0] == 2


def test_pool_is_reproducible_from_its_seed():
    a, b = make_pool(seed=3), make_pool(seed=3)
    for ma, mb in zip(a.models, b.models):
        for pa, pb in zip(ma.parameters(), mb.parameters()):
            assert torch.equal(pa, pb)
    assert [a.sample(s) for s in range(20)] == [b.sample(s) for s in range(20)]
    assert not torch.equal(make_pool(seed=4).models[0].features[0].weight, a.models[0].features[0].weight)
    assert len({a.sample(s) for s in range(50)}) == 3, "every member gets used"


def test_state_dict_round_trip_continues_identically():
    x, y = synthetic()
    a = make_pool()
    a.warm_up(x, y)
    b = make_pool()
    b.load_state_dict(copy.deepcopy(a.state_dict()))  # as if through a file
    assert b.steps == a.steps and b.resets == a.resets
    for _ in range(7):
        assert a.train_step(1, x, y) == b.train_step(1, x, y)
    for pa, pb in zip(a.models[1].parameters(), b.models[1].parameters()):
        assert torch.equal(pa, pb)


def test_chunked_steps_equal_the_full_batch_step_without_batch_statistics():
    """Gradient accumulation over chunks of 4 (of 6) is the full-batch SGD step when no layer uses batch statistics;
    with BatchNorm each chunk is normalised on its own, so the step differs but still trains."""
    make = lambda norm: lambda: ConvNet(channels=1, resolution=8, depth=1, width=4, norm=norm, out_features=3)  # noqa: E731
    x, y = synthetic()
    for norm, same in (("none", True), ("instance", True), ("batch", False)):
        full, chunked = (ModelPool(make(norm), size=1, max_steps=50, chunk_size=c) for c in (None, 4))
        losses = [(full.train_step(0, x, y), chunked.train_step(0, x, y)) for _ in range(5)]
        a, b = full.models[0].state_dict(), chunked.models[0].state_dict()
        close = all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a)
        assert close == same, norm
        assert losses[-1][1] < losses[0][1]
