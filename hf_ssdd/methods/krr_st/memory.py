"""Peak memory of a KRR-ST step, estimated before step 1, and the chunk sizes that make it fit.

A run that cannot fit must say so before step 1, with the estimate and what to change, not with an out-of-memory
error at step 900. The estimate adds up what a step holds (float32 unless noted):

- the real images, uint8 `(N, C, H, W)` (host memory: counted on the device only when it is the CPU);
- the synthetic set `(m, C, H, W)` and targets `(m, d)`, each with its gradient and two Adam moments (for `m / P`
  rows when sharded, plus the whole set gathered for the pool's step);
- the pool: `l` learners with their SGD momentum, and one gradient;
- the teacher's weights, and its activations on one chunk of the real batch;
- features `Φ_s (m, q)` and `Φ_x (n / P, q)`, `K_xs (n / P, m)`, and the system the solver factorises (`m x m` in
  the dual, `q x q` in the primal), each with what autograd keeps of it;
- the learner's activations: in the outer step, for one chunk of `X_s` (all of `X_s` when it is one chunk); in the
  pool's training step, for one pool chunk. The two phases do not overlap, so the larger one counts.
"""

from __future__ import annotations

import torch
from torch import nn

from ...memory import GB, RUNTIME_BYTES, MemoryPlan, activation_bytes, device_budget, parameter_bytes


def plan_memory(cfg, learner: nn.Module, teacher, image_shape: tuple[int, int, int], num_images: int,
                device: torch.device, num_processes: int = 1, budget: int | None = None) -> MemoryPlan:
    """Estimate the peak memory of one process of the run `cfg` (a `KRRSTConfig`), see the module docstring.

    `learner` is one pool member (with its head), `teacher` a `Teacher`, `image_shape` `(C, H, W)`.
    """
    from .krr import resolve_solver

    device = torch.device(device)
    c, h, w = image_shape
    m, d, n = cfg.num_synthetic, teacher.dim, cfg.batch_size // num_processes
    q = learner.feature_dim + 1
    f32 = 4
    one = torch.zeros(1, c, h, w, device=next(learner.parameters()).device)
    train_act = activation_bytes(learner, one, saved=True)
    eval_act = activation_bytes(learner, one, saved=False)
    side = teacher.image_size or h
    teacher_one = torch.zeros(1, teacher.num_channels, side, side, device=next(teacher.parameters()).device)
    teacher_act = activation_bytes(teacher.encoder, teacher_one, saved=False) if cfg.teacher_views == 0 else 0
    chunk = cfg.feature_chunk_size
    pool_chunk = min(m, cfg.pool_chunk_size or m)
    solver = resolve_solver(cfg.krr_solver, m, q)
    system = q if solver == "primal" else m

    owned = m // num_processes if cfg.shard_synthetic else m
    parts = {
        "real images (uint8)": num_images * c * h * w if device.type == "cpu" else 0,
        "synthetic set + Adam": 4 * owned * (c * h * w + d) * f32,
        "gathered synthetic set": (m - owned) * (c * h * w + d) * f32,
        "model pool": (2 * cfg.pool_size + 1) * parameter_bytes(learner),
        "teacher weights": parameter_bytes(teacher.encoder),
        "teacher activations": min(n, chunk) * teacher_act,
        "features and K_xs": (3 * m * q + 2 * n * q + 2 * n * m) * f32,
        f"KRR system ({solver}, {system}x{system})": 3 * system * system * f32,
    }
    local = owned if cfg.shard_synthetic else m
    outer = min(local, chunk) * train_act + min(n, chunk) * eval_act
    parts["learner activations"] = max(outer, pool_chunk * train_act)
    parts["runtime"] = RUNTIME_BYTES
    return MemoryPlan(parts, device_budget(device) if budget is None else budget, str(device))


def fit_chunks(cfg, estimate) -> tuple[int, int | None, MemoryPlan]:
    """The largest power-of-two `feature_chunk_size` and `pool_chunk_size` (never above the configured ones) whose
    plan fits, with that plan; `estimate(cfg)` gives a `MemoryPlan`. The last plan tried is returned if none fits."""
    import dataclasses

    plan = estimate(cfg)
    size = 1 << max(cfg.num_synthetic, cfg.batch_size, cfg.feature_chunk_size).bit_length()
    while not plan.fits and size > 1:
        size //= 2
        trial = dataclasses.replace(
            cfg, feature_chunk_size=min(cfg.feature_chunk_size, size),
            pool_chunk_size=min(cfg.pool_chunk_size or cfg.num_synthetic, size),
        )
        plan = estimate(trial)
        cfg = trial
    return cfg.feature_chunk_size, cfg.pool_chunk_size, plan


def check_fits(cfg, learner: nn.Module, teacher, image_shape, num_images, device, num_processes=1):
    """`(cfg, plan)`: `cfg` with `feature_chunk_size` set when it was `None` (one pass over `X_s` and the real batch
    when that fits, else the largest power of two that does), and its plan. A `ConfigError` with the estimate and
    the chunk sizes (or other changes) that would fit when it does not fit."""
    import dataclasses

    from ...config import ConfigError

    budget = int(cfg.max_memory_gb * GB) if cfg.max_memory_gb else None

    def estimate(c):
        return plan_memory(c, learner, teacher, image_shape, num_images, device, num_processes, budget)

    if cfg.feature_chunk_size is None:
        whole = dataclasses.replace(cfg, feature_chunk_size=max(cfg.num_synthetic, cfg.batch_size // num_processes))
        size, _, _ = fit_chunks(whole, lambda c: estimate(dataclasses.replace(c, pool_chunk_size=cfg.pool_chunk_size)))
        cfg = dataclasses.replace(cfg, feature_chunk_size=size)
    plan = estimate(cfg)
    if plan.fits:
        return cfg, plan
    feature_chunk, pool_chunk, fitted = fit_chunks(cfg, estimate)
    fix = (f"--feature_chunk_size {feature_chunk} --pool_chunk_size {pool_chunk} (estimate "
           f"{fitted.total / GB:.2f} GB)" if fitted.fits else
           "fewer synthetic images (--num_synthetic), a smaller --batch_size, or more processes")
    raise ConfigError(
        f"this run needs about {plan.total / GB:.2f} GB and {plan.device} has {plan.budget / GB:.2f} GB to give:\n"
        f"{plan.table()}\nTo fit, use {fix}."
    )


def plan(cfg) -> MemoryPlan:
    """`hf-ssdd plan`: print the memory estimate of a distillation config on this machine's device."""
    from accelerate import PartialState

    from ...config import ConfigError
    from ...image_store import load_images
    from ...learners import learner_of
    from ...teachers import Teacher

    state = PartialState()
    first = load_images(cfg, rows=1)
    num_images, resolution, channels = first.num_rows, first.resolution, first.channels
    teacher = Teacher.from_pretrained(cfg.teacher, cfg.teacher_revision, cfg.teacher_pooling).to(state.device)
    learner = learner_of(cfg, channels, resolution, teacher.dim).to(state.device)
    shape = tuple(first.images.shape[1:])
    header = (f"hf-ssdd plan: m={cfg.num_synthetic}, {num_images} real images {shape}, teacher dim {teacher.dim}, "
              f"{state.num_processes} process(es)")
    try:
        cfg, result = check_fits(cfg, learner, teacher, shape, num_images, state.device, state.num_processes)
    except ConfigError as err:  # printed, not raised: planning is the job here
        print(f"{header}\n{err}")
        return None
    print(f"{header}\n{result.table()}\nfits: feature_chunk_size={cfg.feature_chunk_size}, "
          f"pool_chunk_size={cfg.pool_chunk_size}")
    return result
