"""MKDT's iteration under `accelerate`: one CPU, one GPU, or many with `accelerate launch`.

    hf-ssdd trajectories --config recipes/configs/fashion_mnist_trajectories.yaml
    hf-ssdd distill --method mkdt --config recipes/configs/fashion_mnist_mkdt.yaml

Iteration `t` matches `segments` expert segments, segment `g = t * segments + j` being: expert number `g mod K` of
a permutation of the `K` experts drawn for pass `g // K` (so every expert is used once per pass, as MKDT's code
cycles through its expert files), a start epoch `s` in `[0, max_start_epoch)` and the inner mini-batches, both drawn
from `(seed, g)`. On `P` processes each unrolls its own share of the segments; the gradients on `(X_s, Y_s, η)` are
averaged, so a run gives the same result on any number of processes to float rounding, and a resumed run the same
result as an uninterrupted one, bitwise. Images, targets and the step size then take one SGD step with momentum,
each at its own learning rate.

The set starts from the normalised source images `init` picks (MKDT: the experts' high-loss images) in the experts'
normalisation, with their teacher representations as targets, exactly what the experts regressed.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ...config import ConfigError
from ...data import Stream, step_generator
from ...trajectories import source_targets, target_rows
from ..distiller import Distiller, NonFiniteLossError
from .config import MKDTConfig
from .matching import inner_batches, matching_loss, unroll
from .memory import check_fits


class MKDTDistiller(Distiller):
    """State of one MKDT run: `(X_s, Y_s)`, the learned step size `η`, their optimiser, the experts.

    Example:
        >>> cfg = MKDTConfig(teacher="teacher", trajectories="trajectories", num_synthetic=100, output_dir="mkdt")
        >>> distilled = MKDTDistiller(cfg).train()  # DistilledSet with metadata["step_size"]
    """

    nan_advice = "Lower --image_learning_rate or --step_size_learning_rate."

    def __init__(self, cfg: MKDTConfig, accelerator=None):
        super().__init__(cfg, accelerator)
        acc, trajectories = self.accelerator, self.trajectories
        if cfg.max_start_epoch - 1 + cfg.expert_epochs > trajectories.num_epochs:
            raise ConfigError(
                f"max_start_epoch={cfg.max_start_epoch} and expert_epochs={cfg.expert_epochs} reach epoch "
                f"{cfg.max_start_epoch - 1 + cfg.expert_epochs}; the experts have {trajectories.num_epochs}."
            )
        if cfg.segments % acc.num_processes:
            raise ConfigError(f"segments={cfg.segments} does not split over {acc.num_processes} processes; pass "
                              f"--segments {acc.num_processes} (one per process) or a multiple.")
        if (cfg.mean or cfg.std) and trajectories.normalization != self.normalization:
            raise ConfigError("--mean/--std differ from the experts' normalisation; MKDT distils in their space: "
                              "drop them.")
        self.normalization = trajectories.normalization
        self.model = trajectories.learner().to(acc.device)
        check_fits(cfg, self.model, self.teacher, tuple(self.images.shape[1:]), len(self.images), acc.device)
        init = torch.tensor(self.init_indices)
        targets = source_targets(self.teacher, self.images, self.normalization, cfg.teacher_cache_dir, acc)
        self.x_s = nn.Parameter(self.normalization.normalize(self.images[init]).to(acc.device))  # (m, C, H, W)
        self.y_s = nn.Parameter(target_rows(targets, init).to(acc.device))  # (m, d)
        self.step_size = nn.Parameter(torch.tensor(cfg.initial_step_size, device=acc.device))  # η, 0-d
        self.optimizer = torch.optim.SGD([
            {"params": [self.x_s], "lr": cfg.image_learning_rate},
            {"params": [self.y_s], "lr": cfg.target_learning_rate},
            {"params": [self.step_size], "lr": cfg.step_size_learning_rate},
        ], momentum=cfg.momentum)
        if self.checkpoint is not None:
            self.load_state_dict(self.checkpoint)

    # --- pieces ---------------------------------------------------------------------------------------------------

    def segment(self, g: int) -> tuple[int, int, list[torch.Tensor]]:
        """Segment `g`: `(expert, start epoch, inner mini-batches)`, a function of `(seed, g)` alone."""
        cfg, k = self.cfg, self.trajectories.num_experts
        order = torch.randperm(k, generator=step_generator(cfg.seed, g // k, Stream.MATCH_SEGMENT))
        generator = step_generator(cfg.seed, g, Stream.MATCH_BATCHES)
        start = int(torch.randint(cfg.max_start_epoch, (1,), generator=generator))
        batches = inner_batches(cfg.num_synthetic, min(cfg.syn_batch_size, cfg.num_synthetic), cfg.syn_steps,
                                generator)
        return int(order[g % k]), start, batches

    def segment_loss(self, g: int) -> torch.Tensor:
        """The matching loss of segment `g`, differentiable in `X_s`, `Y_s` and `η`."""
        expert, start, batches = self.segment(g)
        device = self.accelerator.device
        theta_s = self.trajectories.parameters(expert, start, device)
        theta_target = self.trajectories.parameters(expert, start + self.cfg.expert_epochs, device)
        final = unroll(self.model, theta_s, self.x_s, self.y_s, self.step_size, batches)
        return matching_loss(final, theta_s, theta_target)

    @torch.no_grad()
    def synthetic_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x_s.detach(), self.y_s.detach()

    # --- the iteration --------------------------------------------------------------------------------------------

    def outer_step(self) -> float:
        """One MKDT iteration: this process's segments unrolled, gradients averaged, momentum SGD on all three."""
        cfg, acc = self.cfg, self.accelerator
        mine = torch.arange(cfg.segments).tensor_split(acc.num_processes)[acc.process_index].tolist()
        self.optimizer.zero_grad(set_to_none=True)
        total = torch.zeros((), device=acc.device)
        for j in mine:
            loss = self.segment_loss(self.step * cfg.segments + j) / cfg.segments
            loss.backward()
            total += loss.detach()
        for p in (self.x_s, self.y_s, self.step_size):  # every process has segments: `segments` is a multiple of P
            p.grad = acc.reduce(p.grad, reduction="sum")
        loss = acc.reduce(total, reduction="sum").item()
        if not math.isfinite(loss):
            raise NonFiniteLossError(loss)
        self.optimizer.step()
        self.step += 1
        return loss

    # --- state ----------------------------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        return {
            "synthetic": {"pixel_values": self.x_s.detach(), "targets": self.y_s.detach(),
                          "step_size": self.step_size.detach()},
            "optimizer": self.optimizer.state_dict(),
            **self.base_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        with torch.no_grad():
            self.x_s.copy_(state["synthetic"]["pixel_values"])
            self.y_s.copy_(state["synthetic"]["targets"])
            self.step_size.copy_(state["synthetic"]["step_size"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.load_base_state(state)

    def learner(self) -> dict:
        return dict(self.trajectories.meta["learner"])

    def scalars(self) -> dict[str, float]:
        return {"step_size": self.step_size.item()}

    def set_metadata(self) -> dict:
        """The learned step size, which `pretrain` uses as its learning rate for this set (as MKDT evaluates)."""
        return {"step_size": self.step_size.item(),
                "trajectories": {"num_experts": self.trajectories.num_experts,
                                 "num_epochs": self.trajectories.num_epochs}}
