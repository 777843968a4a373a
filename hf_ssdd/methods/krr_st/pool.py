"""The model pool: `l` learners at different stages of training on the synthetic set.

The outer loss averages over feature maps `f` met along the training trajectory of a learner on `(X_s, Y_s)`, not
over one fixed network. Each pool member is trained online, one SGD step each time it is used, and re-initialised
after `U` steps *with its step count reset* (the authors' code forgot the reset, so after the first reset almost every
outer step used a fresh network). At start, member `i` is trained for a random number of steps in `[1, U)` so the
pool covers the trajectory.

Every random choice (which member, its warm-up length, its initial weights) is a function of the seed and a counter,
so the pool is identical on every process and after a resume.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ...data import Stream, step_generator


class ModelPool:
    """`size` learners, each with its own SGD optimiser, step count and number of resets.

    Args:
        make_model: builds a freshly initialised learner with a linear head `(m, p) -> (m, d)`; called under a
            forked RNG seeded per (member, reset), so initial weights are reproducible.
        size: `l`, number of members.
        max_steps: `U`, online steps before a member is re-initialised.
        chunk_size: `None` trains on the whole synthetic set at once, as the paper does. A number accumulates the
            gradient over chunks of that many images, so memory holds one chunk's activations; BatchNorm then
            normalises each chunk with its own statistics (the same result only without batch statistics).
    """

    def __init__(
        self,
        make_model: Callable[[], nn.Module],
        size: int = 10,
        max_steps: int = 1000,
        lr: float = 0.1,
        momentum: float = 0.9,
        weight_decay: float = 1e-3,
        seed: int = 0,
        device: torch.device | str = "cpu",
        chunk_size: int | None = None,
    ):
        self.make_model, self.max_steps, self.seed, self.device = make_model, max_steps, seed, torch.device(device)
        self.chunk_size = chunk_size
        self.sgd = dict(lr=lr, momentum=momentum, weight_decay=weight_decay)
        self.resets = [0] * size
        self.steps = [0] * size
        self.models: list[nn.Module] = [None] * size
        self.optimizers: list[torch.optim.Optimizer] = [None] * size
        for i in range(size):
            self._initialise(i)

    def __len__(self) -> int:
        return len(self.models)

    def _initialise(self, i: int) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed((self.seed * 1_000_003 + i) * 104_729 + self.resets[i])
            model = self.make_model().to(self.device)
        self.models[i] = model
        self.optimizers[i] = torch.optim.SGD(model.parameters(), **self.sgd)
        self.steps[i] = 0

    def warm_up(self, x_s: torch.Tensor, y_s: torch.Tensor, progress: bool = True) -> None:
        """Train member `i` for a random number of steps in `[1, U)` on `(x_s, y_s)`, for every `i`."""
        from tqdm.auto import tqdm

        generator = step_generator(self.seed, 0, Stream.POOL_WARM_UP)
        lengths = torch.randint(1, self.max_steps, (len(self),), generator=generator)
        with tqdm(total=int(lengths.sum()), desc="pool warm-up", disable=not progress, leave=False) as bar:
            for i, length in enumerate(lengths.tolist()):
                for _ in range(length):
                    self.train_step(i, x_s, y_s)
                bar.update(length)

    def sample(self, step: int) -> int:
        """Index of the member used at outer step `step`."""
        return int(torch.randint(len(self), (1,), generator=step_generator(self.seed, step, Stream.POOL_MEMBER)))

    def train_step(self, i: int, x_s: torch.Tensor, y_s: torch.Tensor) -> float:
        """One full-batch SGD step of member `i` on MSE(head(f(x_s)), y_s); re-initialise it after `U` steps.

        `x_s (m, C, H, W)` and `y_s (m, d)` are taken as constants. Returns the member's loss before the step.
        """
        model, optimizer = self.models[i], self.optimizers[i]
        model.train()
        optimizer.zero_grad(set_to_none=True)
        m, loss = len(x_s), 0.0
        for x, y in zip(x_s.detach().split(self.chunk_size or m), y_s.detach().split(self.chunk_size or m)):
            chunk_loss = F.mse_loss(model(x), y) * (len(x) / m)
            chunk_loss.backward()
            loss += chunk_loss.item()
        optimizer.step()
        self.steps[i] += 1
        if self.steps[i] >= self.max_steps:
            self.resets[i] += 1
            self._initialise(i)
        return loss

    def state_dict(self) -> dict:
        return {
            "steps": list(self.steps),
            "resets": list(self.resets),
            "models": [m.state_dict() for m in self.models],
            "optimizers": [o.state_dict() for o in self.optimizers],
        }

    def load_state_dict(self, state: dict) -> None:
        if len(state["models"]) != len(self):
            raise ValueError(f"checkpoint has a pool of {len(state['models'])} models, this run {len(self)}.")
        self.resets = list(state["resets"])
        for i in range(len(self)):
            self._initialise(i)
            self.models[i].load_state_dict(state["models"][i])
            self.optimizers[i].load_state_dict(state["optimizers"][i])
        self.steps = list(state["steps"])
