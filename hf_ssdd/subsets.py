"""The paper's subset baselines: `m` real source images instead of `m` distilled ones.

`random_subset` draws them uniformly; `kmeans_subset` takes the real image nearest to each of `m` k-means centres of
the images' features (e.g. teacher embeddings `(N, d)`), so the subset covers the feature space. Everything runs on
the device of `features`; distances are computed in blocks, so N = 60,000, d = 512 never builds an `(N, k, d)` tensor.

    idx = kmeans_subset(teacher_features, m=1000, seed=0)    # (1000,) distinct indices into the source
"""

from __future__ import annotations

import torch

from . import data
from .config import ConfigError

BLOCK = 2**24  # distance entries per block (64 MiB in float32)


def random_subset(num_images: int, m: int, seed: int) -> torch.Tensor:
    """Indices `(m,)`: the first `m` of a permutation drawn from `seed`, so smaller subsets nest in larger ones."""
    if not 0 < m <= num_images:
        raise ConfigError(f"m={m} must be in 1..{num_images}, the number of source images.")
    return torch.randperm(num_images, generator=data.step_generator(seed, 0, data.Stream.RANDOM_SUBSET))[:m]


def initial_indices(num_images: int, m: int, seed: int) -> torch.Tensor:
    """Indices `(m,)` of the real images a distilled set starts from (the evaluation's `init` baseline)."""
    return torch.randperm(num_images, generator=data.step_generator(seed, 0, data.Stream.INITIAL_IMAGES))[:m]


def nearest(
    queries: torch.Tensor, points: torch.Tensor, t: int = 1, block: int = BLOCK
) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared distances and indices `(n, t)` of the `t` nearest `points` `(p, d)` to each of `queries` `(n, d)`.

    Uses |q|^2 - 2 q.p + |p|^2 on blocks of `block // p` queries, so no `(n, p, d)` tensor is built. Equal distances go
    to the lower index; distances within float rounding of `|q|^2` may come in either order, depending on `block`.
    """
    rows = max(1, block // len(points))
    points_sq = (points * points).sum(1)  # (p,)
    distances, indices = [], []
    for start in range(0, len(queries), rows):
        q = queries[start : start + rows]
        d2 = (q * q).sum(1, keepdim=True) - 2 * q @ points.T + points_sq  # (rows, p)
        if t == 1:
            d, i = d2.clamp_min(0).min(1, keepdim=True)  # equal distances: the first index
        else:
            d, i = d2.clamp_min(0).sort(dim=1, stable=True)  # equal distances: lower index first
            d, i = d[:, :t], i[:, :t]
        distances.append(d)
        indices.append(i)
    return torch.cat(distances), torch.cat(indices)


def _kmeans_plus_plus(x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """`k` initial centres `(k, d)`: each next one drawn with probability proportional to its squared distance."""
    first = torch.randint(len(x), (1,), generator=generator).item()
    chosen = [first]
    x_sq = (x * x).sum(1)  # (N,)
    d2 = (x_sq - 2 * x @ x[first] + x_sq[first]).clamp_min(0)  # (N,) to the nearest centre so far
    for _ in range(1, k):
        weights = d2.cpu().double()
        if weights.sum() == 0:
            weights = torch.ones_like(weights)  # fewer distinct points than k: any point will do
        index = torch.multinomial(weights, 1, generator=generator).item()
        chosen.append(index)
        d2 = torch.minimum(d2, (x_sq - 2 * x @ x[index] + x_sq[index]).clamp_min(0))
    return x[chosen].clone()


def kmeans(features: torch.Tensor, k: int, seed: int, iters: int = 50, block: int = BLOCK) -> torch.Tensor:
    """Centres `(k, d)` of `features` `(N, d)`: k-means++ from `seed`, then Lloyd iterations until nothing moves.

    An empty cluster is re-seeded at the point farthest from its centre, so the result depends on `seed` alone.
    """
    if not 0 < k <= len(features):
        raise ConfigError(f"k={k} must be in 1..{len(features)}, the number of points.")
    x = features.detach().float()
    centres = _kmeans_plus_plus(x, k, data.step_generator(seed, 0, data.Stream.KMEANS_SEEDS))
    assignment = None
    for _ in range(iters):
        d2, new = nearest(x, centres, 1, block)
        d2, new = d2[:, 0], new[:, 0]  # (N,)
        if assignment is not None and torch.equal(new, assignment):
            break
        assignment = new
        counts = torch.bincount(assignment, minlength=k)  # (k,)
        sums = torch.zeros_like(centres).index_add_(0, assignment, x)  # (k, d)
        centres = sums / counts.clamp_min(1)[:, None]
        empty = (counts == 0).nonzero().squeeze(1)
        if len(empty):
            centres[empty] = x[d2.topk(len(empty)).indices]
    return centres


def distinct_nearest(centres: torch.Tensor, features: torch.Tensor, block: int = BLOCK) -> torch.Tensor:
    """Indices `(k,)` of distinct points of `features` `(N, d)`, each the nearest still unused one to a centre `(k, d)`.

    Centres claim points closest-first; a centre whose nearest point is taken gets its next nearest unused one. Equal
    distances go to the lower index, and the final distances are computed directly, so `block` does not change the pick.
    """
    if len(centres) > len(features):
        raise ConfigError(f"{len(centres)} centres need as many distinct points; there are {len(features)}.")
    x, centres = features.detach().float(), centres.detach().float()
    candidates = nearest(centres, x, min(len(x), 8), block)[1].sort(dim=1).values  # (k, 8): covers almost any clash
    d2 = ((x[candidates] - centres[:, None]) ** 2).sum(-1)  # (k, 8), free of the rounding of |c|^2 - 2 c.x + |x|^2
    d2, order = d2.sort(dim=1, stable=True)  # equal distances: lower index first
    d2, candidates = d2.cpu(), candidates.gather(1, order).cpu()
    used, chosen = set(), torch.empty(len(centres), dtype=torch.int64)
    for c in d2[:, 0].argsort(stable=True).tolist():
        pick = next((i for i in candidates[c].tolist() if i not in used), None)
        if pick is None:
            row = ((x - centres[c]) ** 2).sum(1).argsort(stable=True).tolist()  # (N,) all points, nearest first
            pick = next(i for i in row if i not in used)
        used.add(pick)
        chosen[c] = pick
    return chosen.to(features.device)


def kmeans_subset(features: torch.Tensor, m: int, seed: int, iters: int = 50, block: int = BLOCK) -> torch.Tensor:
    """Indices `(m,)`, distinct, of the real images nearest to the `m` k-means centres of their `features` `(N, d)`."""
    centres = kmeans(features, m, seed, iters, block)
    return distinct_nearest(centres, features, block)
