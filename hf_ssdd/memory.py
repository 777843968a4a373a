"""Memory of a distillation run, estimated before it starts: what every method's planner shares.

A run that cannot fit must say so before step 1, with the estimate and what to change, not with an out-of-memory
error at step 900. Each method adds up what its step holds (`methods/<name>/memory.py`) into a `MemoryPlan`;
activations per image are measured here by running one image through the network with forward hooks (the sum of
every layer's output in train mode, the largest layer's in eval mode), so any architecture is estimated the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn

GB = 1024**3
RUNTIME_BYTES = GB // 2  # interpreter, libraries, allocator slack, CUDA context


def activation_bytes(model: nn.Module, x: torch.Tensor, saved: bool) -> int:
    """Bytes of activations per image `x (1, C, H, W)`: all layers' outputs if autograd keeps them (`saved`), else
    twice the largest one (an input and an output alive together)."""
    sizes = []
    hooks = [m.register_forward_hook(lambda m, i, o: sizes.append(o.numel() * o.element_size()))
             for m in model.modules() if not list(m.children()) and isinstance(m, nn.Module)]
    was_training = model.training
    try:
        with torch.no_grad():
            model.train(saved)
            model(x)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return sum(sizes) if saved else 2 * max(sizes, default=0)


def parameter_bytes(model: nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


@dataclass
class MemoryPlan:
    """Estimated bytes of each part of a step, the total, and the memory of the device it was made for."""

    parts: dict[str, int]
    budget: int
    device: str

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    @property
    def fits(self) -> bool:
        return self.total <= self.budget

    def table(self) -> str:
        rows = [f"  {name:<34} {size / GB:8.3f} GB" for name, size in self.parts.items()]
        rows.append(f"  {'total (estimate)':<34} {self.total / GB:8.3f} GB")
        rows.append(f"  {'available on ' + self.device:<34} {self.budget / GB:8.3f} GB")
        return "\n".join(rows)


def device_budget(device: torch.device) -> int:
    """Bytes a run may use: 90% of the accelerator's free memory, or of the host's available memory."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(0.9 * free)
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(0.9 * int(info["MemAvailable"].split()[0]) * 1024)
    except (OSError, KeyError, ValueError):
        return int(0.9 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
