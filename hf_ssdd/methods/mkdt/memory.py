"""Peak memory of an MKDT iteration, estimated before step 1 (float32 unless noted).

The unroll keeps its whole graph until the backward pass: for each of the `syn_steps` inner steps, the weights
`θ_i` and their gradient `(P,)` each, and the activations of one mini-batch through the network, kept twice over
(the forward pass, and the backward pass that `create_graph` makes differentiable). Beside it: the synthetic set
`(m, C, H, W)` and targets `(m, d)` with their gradients and momentum, the expert's start and target weights, the
teacher's weights, the real images on a CPU device (uint8), and the runtime.
"""

from __future__ import annotations

import torch
from torch import nn

from ...memory import GB, RUNTIME_BYTES, MemoryPlan, activation_bytes, device_budget, parameter_bytes


def plan_memory(cfg, learner: nn.Module, teacher, image_shape: tuple[int, int, int], num_images: int,
                device: torch.device, budget: int | None = None) -> MemoryPlan:
    """Estimate one process's peak memory for the run `cfg` (an `MKDTConfig`); `learner` is the experts' network
    with its head, `image_shape` `(C, H, W)`."""
    device = torch.device(device)
    c, h, w = image_shape
    m, d, f32 = cfg.num_synthetic, teacher.dim, 4
    batch = min(cfg.syn_batch_size, m)
    one = torch.zeros(1, c, h, w, device=next(learner.parameters()).device)
    weights = parameter_bytes(learner)
    parts = {
        "real images (uint8)": num_images * c * h * w if device.type == "cpu" else 0,
        "synthetic set + gradient + momentum": 3 * m * (c * h * w + d) * f32,
        "expert start and target weights": 2 * weights,
        "teacher weights": parameter_bytes(teacher.encoder),
        f"unrolled graph ({cfg.syn_steps} steps)": cfg.syn_steps * (
            2 * weights + 2 * batch * activation_bytes(learner, one, saved=True)
        ),
        "runtime": RUNTIME_BYTES,
    }
    return MemoryPlan(parts, device_budget(device) if budget is None else budget, str(device))


def check_fits(cfg, learner: nn.Module, teacher, image_shape, num_images, device) -> MemoryPlan:
    """The plan of `cfg`, or a `ConfigError` with the estimate and what to lower when it does not fit."""
    from ...config import ConfigError

    budget = int(cfg.max_memory_gb * GB) if cfg.max_memory_gb else None
    plan = plan_memory(cfg, learner, teacher, image_shape, num_images, device, budget)
    if not plan.fits:
        raise ConfigError(
            f"this run needs about {plan.total / GB:.2f} GB and {plan.device} has {plan.budget / GB:.2f} GB to give:\n"
            f"{plan.table()}\nTo fit, lower --syn_steps or --syn_batch_size (the unrolled graph grows with both), "
            "or --num_synthetic."
        )
    return plan


def plan(cfg) -> MemoryPlan | None:
    """`hf-ssdd plan --method mkdt`: print the memory estimate of an MKDT config on this machine's device."""
    from accelerate import PartialState

    from ...config import ConfigError
    from ...image_store import load_images
    from ...teachers import Teacher
    from ...trajectories import Trajectories

    state = PartialState()
    first = load_images(cfg, rows=1)
    teacher = Teacher.from_pretrained(cfg.teacher, cfg.teacher_revision, cfg.teacher_pooling).to(state.device)
    learner = Trajectories.load(cfg.trajectories, cfg.trajectories_revision).learner().to(state.device)
    shape = tuple(first.images.shape[1:])
    print(f"hf-ssdd plan: mkdt, m={cfg.num_synthetic}, {first.num_rows} real images {shape}, teacher dim "
          f"{teacher.dim}, {cfg.syn_steps} inner steps of {min(cfg.syn_batch_size, cfg.num_synthetic)}")
    try:
        result = check_fits(cfg, learner, teacher, shape, first.num_rows, state.device)
    except ConfigError as err:  # printed, not raised: planning is the job here
        print(err)
        return None
    print(f"{result.table()}\nfits")
    return result
