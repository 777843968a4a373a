"""Subset baselines: random draws nest and repeat per seed; k-means finds known clusters; picks are distinct nearest."""

import pytest
import torch

from hf_ssdd.config import ConfigError
from hf_ssdd.subsets import distinct_nearest, kmeans, kmeans_subset, nearest, random_subset

TRUE_CENTRES = 10.0 * torch.eye(4, 6)  # (4, 6): four clusters 10 apart


def _clusters(per_cluster=50, noise=0.1, seed=0):
    """`(4 * per_cluster, 6)` points scattered around TRUE_CENTRES, cluster by cluster."""
    g = torch.Generator().manual_seed(seed)
    return TRUE_CENTRES.repeat_interleave(per_cluster, 0) + noise * torch.randn(4 * per_cluster, 6, generator=g)


def test_random_subset_is_distinct_deterministic_nested_and_checked():
    index = random_subset(100, 10, seed=0)
    assert index.shape == (10,) and len(set(index.tolist())) == 10 and 0 <= index.min() and index.max() < 100
    assert torch.equal(index, random_subset(100, 10, seed=0))
    assert not torch.equal(index, random_subset(100, 10, seed=1))
    assert torch.equal(random_subset(100, 30, seed=0)[:10], index)
    with pytest.raises(ConfigError, match="m=101"):
        random_subset(100, 101, seed=0)


def test_nearest_matches_cdist_in_any_block_size():
    g = torch.Generator().manual_seed(0)
    queries, points = torch.randn(37, 5, generator=g), torch.randn(23, 5, generator=g)
    reference = torch.cdist(queries.double(), points.double()).pow(2)  # (37, 23)
    expected_d2, expected_index = reference.topk(3, dim=1, largest=False)
    for block in (1, 50, 10**9):
        d2, index = nearest(queries, points, t=3, block=block)
        assert torch.equal(index, expected_index)
        assert torch.allclose(d2.double(), expected_d2, atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kmeans_recovers_well_separated_clusters(seed):
    centres = kmeans(_clusters(), 4, seed=seed)
    match = torch.cdist(centres, TRUE_CENTRES)  # (found, true)
    assert sorted(match.argmin(1).tolist()) == [0, 1, 2, 3]
    assert match.min(1).values.max() < 0.1


def test_kmeans_is_deterministic_per_seed_and_the_same_in_blocks():
    x = torch.randn(300, 8, generator=torch.Generator().manual_seed(1))  # no clear clusters: many Lloyd steps
    centres = kmeans(x, 7, seed=3)
    assert torch.equal(centres, kmeans(x, 7, seed=3))
    assert not torch.equal(centres, kmeans(x, 7, seed=4))
    assert torch.allclose(kmeans(x, 7, seed=3, block=20), centres, atol=1e-5)


def test_kmeans_with_more_centres_than_distinct_points_stays_finite():
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]).repeat(4, 1)  # (12, 2), 3 distinct points
    centres = kmeans(x, 5, seed=0)
    assert centres.shape == (5, 2) and torch.isfinite(centres).all()
    assert torch.cdist(centres, x).min(1).values.max() < 1e-6  # every centre sits on a point
    with pytest.raises(ConfigError, match="k=13"):
        kmeans(x, 13, seed=0)


def _naive_distinct_nearest(centres, x):
    """Centres claim points closest-first; each takes its nearest unused point (equal distances: lower index)."""
    d = ((x[None] - centres[:, None]) ** 2).sum(-1)  # (k, N)
    chosen, used = [None] * len(centres), set()
    for c in d.min(1).values.argsort(stable=True).tolist():
        chosen[c] = next(i for i in d[c].argsort(stable=True).tolist() if i not in used)
        used.add(chosen[c])
    return torch.tensor(chosen)


def test_distinct_nearest_gives_a_clashing_centre_its_next_nearest_point():
    x = _clusters(per_cluster=5)
    centres = torch.stack([x[3], x[3] + 0.001, x[12]])  # the first two share their nearest point
    index = distinct_nearest(centres, x)
    assert index[0] == 3 and index[2] == 12
    assert index[1] == torch.cdist(x[3:4], x)[0].argsort()[1]
    same = x[0:1].repeat(10, 1)  # more clashes than the 8 candidates kept per centre
    assert sorted(distinct_nearest(same, x).tolist()) == sorted(torch.cdist(same[:1], x)[0].argsort()[:10].tolist())


def test_kmeans_subset_picks_distinct_nearest_images_in_any_block_size():
    x = _clusters(per_cluster=25, noise=1.0)
    index = kmeans_subset(x, 12, seed=0)
    assert index.shape == (12,) and len(set(index.tolist())) == 12
    assert torch.equal(index, _naive_distinct_nearest(kmeans(x, 12, seed=0), x))
    assert torch.equal(kmeans_subset(x, 12, seed=0, block=30), index)
    assert set(index.tolist()) != set(kmeans_subset(x, 12, seed=1).tolist())
