"""KRR-ST's outer step under `accelerate`: one CPU, one GPU, or many with `accelerate launch`.

    hf-ssdd distill --method krr_st --config recipes/configs/fashion_mnist.yaml --teacher teacher --output_dir distilled
    accelerate launch --config_file recipes/accelerate/multi_gpu.yaml recipes/distill.py --config ...

The global real batch, its augmentation, the choice of pool member and every initialisation are functions of
`(seed, step)` alone. Each process takes its slice of the global batch; gradients on `(X_s, Y_s)` are averaged, and
the pool is updated from the same synchronised `(X_s, Y_s)` everywhere, so a run gives the same result on any number
of processes, and a resumed run the same result as an uninterrupted one. With `shard_synthetic`, each process owns
`m / P` rows of `(X_s, Y_s)` and their Adam state; features and targets are all-gathered (differentiably) into the
full kernel, and each process updates its own rows: the same result again.

Features are taken with the pool learner in eval mode (BatchNorm running statistics), so that `f` is a function of
one image, not of the batch it arrives in: the kernel is then a true kernel, and neither the number of processes
nor the forward chunk size changes it. The learner trains in train mode, on the whole synthetic set.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from ...config import ConfigError
from ...data import Augmentation, Stream, batch_indices, step_generator
from ...learners import ConvNet, learner_of
from ..distiller import Distiller, NonFiniteLossError
from .config import KRRSTConfig
from .krr import krr_loss, with_bias
from .memory import check_fits
from .pool import ModelPool


def reference_config(cfg: KRRSTConfig) -> KRRSTConfig:
    """`cfg` with the step of the authors' code: the teacher on every real batch, the synthetic set and the real
    batch each in one pass, a general linear solve, float32."""
    return dataclasses.replace(
        cfg, teacher_views=0, krr_solver="reference", mixed_precision="no", pool_chunk_size=None,
        feature_chunk_size=max(cfg.num_synthetic, cfg.batch_size),
    )


MOMENTS = ("exp_avg", "exp_avg_sq")  # Adam's per-element state, sharded with the synthetic set


def embed(model: nn.Module, x: torch.Tensor, chunk_size: int) -> torch.Tensor:
    """`(n, C, H, W)` -> `(n, p + 1)` features with the bias column, `chunk_size` images at a time.

    When `x` needs a gradient and is longer than one chunk, each chunk's activations are dropped after its forward
    and recomputed in the backward pass, so memory holds one chunk's activations whatever `n` is, for the price of a
    second forward pass.
    """
    from torch.utils.checkpoint import checkpoint

    chunks = x.split(chunk_size)
    if x.requires_grad and torch.is_grad_enabled() and len(chunks) > 1:
        return with_bias(torch.cat([checkpoint(model.embed, chunk, use_reentrant=False) for chunk in chunks]))
    return with_bias(torch.cat([model.embed(chunk) for chunk in chunks]))


def linear_decay(max_steps: int, final_ratio: float):
    """Learning-rate factor at each step: 1 at step 0, `final_ratio` at `max_steps`."""
    return lambda step: 1.0 - (1.0 - final_ratio) * min(step, max_steps) / max_steps


class KRRSTDistiller(Distiller):
    """State of one KRR-ST run: the synthetic set `(X_s, Y_s)`, its optimiser, the model pool, the real data.

    Example:
        >>> cfg = KRRSTConfig(teacher="teacher", num_synthetic=100, max_steps=1000, output_dir="distilled")
        >>> distilled = KRRSTDistiller(cfg).train()  # DistilledSet; also written to cfg.output_dir
    """

    nan_advice = "Lower --learning_rate or set --max_grad_norm."

    def __init__(self, cfg: KRRSTConfig, accelerator=None):
        if cfg.reference:
            cfg = reference_config(cfg)
        super().__init__(cfg, accelerator, mixed_precision=cfg.mixed_precision)
        acc = self.accelerator
        if cfg.batch_size % acc.num_processes:
            raise ConfigError(
                f"batch_size={cfg.batch_size} does not split over {acc.num_processes} processes; use a multiple."
            )
        if cfg.shard_synthetic and cfg.num_synthetic % acc.num_processes:
            raise ConfigError(
                f"num_synthetic={cfg.num_synthetic} does not shard over {acc.num_processes} processes; use a multiple "
                "or --shard_synthetic false."
            )
        self.fill = self.normalization.crop_fill(cfg.crop_fill)  # (C,) colour of the crops' padding
        self.cfg = cfg = check_fits(cfg, self.make_learner().to(acc.device), self.teacher,
                                    tuple(self.images.shape[1:]), len(self.images), acc.device, acc.num_processes)[0]
        self.teacher.chunk_size = cfg.feature_chunk_size
        self.teacher_cache = None
        if cfg.teacher_views:
            from ...teacher_cache import TeacherCache

            self.teacher_cache = TeacherCache.build(
                self.teacher, self.images, self.normalization, cfg.teacher_views, cfg.crop_padding, cfg.flip, cfg.seed,
                cfg.teacher_cache_dir, acc, cfg.feature_chunk_size, cfg.crop_fill,
            )

        x_s = self.normalization.normalize(self.images[self.init_indices].to(acc.device))
        self.shard = self.shard_rows(cfg.num_synthetic) if cfg.shard_synthetic else slice(None)
        self.x_s = nn.Parameter(x_s[self.shard].clone())  # (m, C, H, W) normalised space, or this process's rows
        y_s = self.teacher.on_normalized(x_s, self.normalization)
        self.y_s = nn.Parameter(y_s[self.shard].clone())  # (m, d), or this process's rows
        self.optimizer = torch.optim.Adam([self.x_s, self.y_s], lr=cfg.learning_rate)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, linear_decay(cfg.max_steps, cfg.final_lr_ratio)
        )
        self.pool = ModelPool(
            self.make_learner,
            size=cfg.pool_size,
            max_steps=cfg.pool_steps,
            lr=cfg.pool_learning_rate,
            momentum=cfg.pool_momentum,
            weight_decay=cfg.pool_weight_decay,
            seed=cfg.seed,
            device=acc.device,
            chunk_size=cfg.pool_chunk_size,
        )
        if self.checkpoint is not None:
            self.load_state_dict(self.checkpoint)
        else:
            self.pool.warm_up(*self.synthetic_set(), progress=self.accelerator.is_main_process)

    # --- pieces ---------------------------------------------------------------------------------------------------

    def make_learner(self) -> ConvNet:
        return learner_of(self.cfg, self.channels, self.resolution, self.teacher.dim)

    def shard_rows(self, m: int) -> slice:
        """The rows of the synthetic set this process owns when it is sharded."""
        acc = self.accelerator
        size = m // acc.num_processes
        return slice(acc.process_index * size, (acc.process_index + 1) * size)

    def gather(self, shard: torch.Tensor) -> torch.Tensor:
        """`(m / P, ...)` rows of every process -> `(m, ...)`, differentiable: the backward pass hands each process
        the sum over processes of the gradients of its own rows. The identity when the set is not sharded."""
        if not self.cfg.shard_synthetic or self.accelerator.num_processes == 1:
            return shard
        from torch.distributed.nn.functional import all_gather

        gathered = torch.cat(all_gather(shard))
        if gathered.requires_grad:
            # The solve's gradient can arrive column-major; its row blocks would then reach all_gather's backward
            # (an all-to-all) non-contiguous, and gloo sends such tensors wrongly.
            gathered.register_hook(lambda grad: grad.contiguous())
        return gathered

    @torch.no_grad()
    def synthetic_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole synthetic set `(m, C, H, W)`, `(m, d)` on every process, without gradient."""
        return self.gather(self.x_s.detach()), self.gather(self.y_s.detach())

    def real_batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """This process's slice of the augmented global real batch of `step`, `(n / P, C, H, W)`, and the teacher's
        targets for it, `(n / P, d)`: from the teacher-view cache when there is one, else from the teacher."""
        cfg, acc = self.cfg, self.accelerator
        indices = batch_indices(len(self.images), cfg.batch_size, step, cfg.seed)
        local = slice(acc.process_index * len(indices) // acc.num_processes,
                      (acc.process_index + 1) * len(indices) // acc.num_processes)
        x = self.normalization.normalize(self.images[indices[local]].to(acc.device))
        if self.teacher_cache is None:
            generator = step_generator(cfg.seed, step, Stream.REAL_VIEWS)
            views = Augmentation.sample(cfg.batch_size, cfg.crop_padding, cfg.flip, generator)
            x = views[local].apply(x, self.fill)
            return x, self.teacher.on_normalized(x, self.normalization)
        generator = step_generator(cfg.seed, step, Stream.VIEW_CHOICE)
        view_ids = torch.randint(cfg.teacher_views, (cfg.batch_size,), generator=generator)
        views, y = self.teacher_cache.lookup(indices[local], view_ids[local])
        return views.apply(x, self.fill), y.to(acc.device)

    # --- the outer step -------------------------------------------------------------------------------------------

    def outer_step(self) -> float:
        """One KRR-ST step: loss on this process's real slice, averaged gradient, Adam, then the pool update."""
        cfg, acc = self.cfg, self.accelerator
        i = self.pool.sample(self.step)
        model = self.pool.models[i].eval().requires_grad_(False)

        with acc.autocast():
            x, y = self.real_batch(self.step)  # (n / P, C, H, W), (n / P, d)
            with torch.no_grad():
                phi_x = embed(model, x, cfg.feature_chunk_size)  # (n / P, p + 1)
            phi_s = self.gather(embed(model, self.x_s, cfg.feature_chunk_size))  # (m, p + 1), differentiable
        loss = krr_loss(phi_s, phi_x, self.gather(self.y_s), y, cfg.ridge, cfg.krr_solver)

        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        sharded = cfg.shard_synthetic and acc.num_processes > 1
        for p in (self.x_s, self.y_s):  # gradient of the mean of the processes' losses
            p.grad = p.grad / acc.num_processes if sharded else acc.reduce(p.grad, reduction="mean")
        loss = acc.reduce(loss.detach(), reduction="mean").item()
        if not math.isfinite(loss):
            raise NonFiniteLossError(loss)
        if cfg.max_grad_norm:
            self.clip_gradient(cfg.max_grad_norm, sharded)
        self.optimizer.step()
        self.scheduler.step()

        model.requires_grad_(True)
        with acc.autocast():
            self.pool.train_step(i, *self.synthetic_set())
        self.step += 1
        return loss

    def clip_gradient(self, max_norm: float, sharded: bool) -> None:
        """Scale the gradient of `(X_s, Y_s)` to norm `max_norm` at most; the norm is over the whole set."""
        squares = sum(p.grad.pow(2).sum() for p in (self.x_s, self.y_s))
        norm = self.accelerator.reduce(squares, reduction="sum").sqrt() if sharded else squares.sqrt()
        for p in (self.x_s, self.y_s):
            p.grad.mul_((max_norm / (norm + 1e-6)).clamp(max=1.0))

    # --- state ----------------------------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """Everything a resumed run needs, with the whole synthetic set and its Adam moments even when they are
        sharded, so a checkpoint resumes on any number of processes. Every process must call it."""
        x_s, y_s = self.synthetic_set()
        optimizer = self.optimizer.state_dict()  # its per-parameter dicts are the live state: build new ones
        optimizer["state"] = {
            index: {**state, **{key: self.gather(state[key]) for key in MOMENTS}}
            for index, state in optimizer["state"].items()
        }
        return {
            "step": self.step,
            "synthetic": {"pixel_values": x_s, "targets": y_s},
            "optimizer": optimizer,
            "scheduler": self.scheduler.state_dict(),
            "pool": self.pool.state_dict(),
            **self.base_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        with torch.no_grad():
            self.x_s.copy_(state["synthetic"]["pixel_values"][self.shard])
            self.y_s.copy_(state["synthetic"]["targets"][self.shard])
        for moments in state["optimizer"]["state"].values():
            for key in MOMENTS:
                moments[key] = moments[key][self.shard]
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.pool.load_state_dict(state["pool"])
        self.load_base_state(state)

    def learner(self) -> dict:
        cfg = self.cfg
        return {"arch": f"convnet{cfg.learner_depth}", "depth": cfg.learner_depth, "width": cfg.learner_width,
                "norm": cfg.learner_norm, "pooling": cfg.learner_pooling, "double_width": cfg.learner_double_width}

    def scalars(self) -> dict[str, float]:
        return {"lr": self.scheduler.get_last_lr()[0]}
