"""KRR-ST distillation under `accelerate`: one CPU, one GPU, or many with `accelerate launch`.

    hf-ssdd distill --config recipes/configs/fashion_mnist.yaml --teacher teacher --output_dir distilled
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
import signal
import time
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from .checkpoint import list_checkpoints, load_checkpoint, resolve_checkpoint, rotate_checkpoints, save_checkpoint
from .config import ConfigError, DistillConfig, check_output_dir, fixed_on_resume, hyperparameters
from .data import Augmentation, Normalization, Stream, batch_indices, describe_source, step_generator
from .image_store import load_images
from .krr import krr_loss, with_bias
from .learners import ConvNet, learner_of
from .memory import check_fits
from .pool import ModelPool
from .subsets import initial_indices
from .tracking import finish_trackers, stage_accelerator, start_trackers


def reference_config(cfg: DistillConfig) -> DistillConfig:
    """`cfg` with the step of the authors' code: the teacher on every real batch, the synthetic set and the real
    batch each in one pass, a general linear solve, float32."""
    return dataclasses.replace(
        cfg, teacher_views=0, krr_solver="reference", mixed_precision="no", pool_chunk_size=None,
        feature_chunk_size=max(cfg.num_synthetic, cfg.batch_size),
    )


MOMENTS = ("exp_avg", "exp_avg_sq")  # Adam's per-element state, sharded with the synthetic set


class NonFiniteLossError(RuntimeError):
    """The outer loss became NaN or infinite; the last good checkpoint is kept."""


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


@contextmanager
def stop_requests():
    """Turn SIGINT / SIGTERM into a flag that the loop checks after each step (so it can checkpoint first)."""
    requested = []
    handler = lambda signum, frame: requested.append(signum)  # noqa: E731
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield requested
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


class Distiller:
    """State of one KRR-ST run: the synthetic set `(X_s, Y_s)`, its optimiser, the model pool, the real data.

    Example:
        >>> cfg = DistillConfig(teacher="teacher", num_synthetic=100, max_steps=1000, output_dir="distilled")
        >>> distilled = Distiller(cfg).train()  # DistilledSet; also written to cfg.output_dir
    """

    def __init__(self, cfg: DistillConfig, accelerator=None):
        from accelerate.utils import set_seed

        from .teachers import Teacher

        if cfg.reference:
            cfg = reference_config(cfg)
        check_output_dir(cfg.output_dir, cfg.overwrite_output_dir, resuming=bool(cfg.resume_from_checkpoint))
        resume = resolve_checkpoint(cfg.resume_from_checkpoint, cfg.output_dir) if cfg.resume_from_checkpoint else None
        checkpoint = load_checkpoint(resume) if resume else None
        if checkpoint is not None:
            check_compatible(cfg, checkpoint["config"], resume)
        self.cfg = cfg
        self.accelerator = accelerator or stage_accelerator(cfg, mixed_precision=cfg.mixed_precision)
        acc = self.accelerator
        set_seed(cfg.seed)  # our own draws come from `step_generator`; this covers everything else
        if cfg.batch_size % acc.num_processes:
            raise ConfigError(
                f"batch_size={cfg.batch_size} does not split over {acc.num_processes} processes; use a multiple."
            )
        if cfg.shard_synthetic and cfg.num_synthetic % acc.num_processes:
            raise ConfigError(
                f"num_synthetic={cfg.num_synthetic} does not shard over {acc.num_processes} processes; use a multiple "
                "or --shard_synthetic false."
            )

        with acc.main_process_first():
            source = load_images(cfg)
        self.images, self.resolution, self.channels, self.column = (
            source.images, source.resolution, source.channels, source.column
        )
        if cfg.num_synthetic > len(self.images):
            raise ConfigError(
                f"num_synthetic={cfg.num_synthetic} is larger than the dataset ({len(self.images)} images); "
                "lower --num_synthetic or use more data."
            )
        self.normalization = Normalization.resolve(self.images, cfg.mean, cfg.std)
        self.fill = self.normalization.crop_fill(cfg.crop_fill)  # (C,) colour of the crops' padding
        if cfg.teacher is None:
            raise ConfigError("no teacher: pass --teacher (a Hub id or a folder from `hf-ssdd train-teacher`).")
        self.teacher = Teacher.from_pretrained(
            cfg.teacher, cfg.teacher_revision, cfg.teacher_pooling
        ).to(acc.device)
        self.cfg = cfg = check_fits(cfg, self.make_learner().to(acc.device), self.teacher,
                                    tuple(self.images.shape[1:]), len(self.images), acc.device, acc.num_processes)[0]
        self.teacher.chunk_size = cfg.feature_chunk_size
        self.teacher_cache = None
        if cfg.teacher_views:
            from .teacher_cache import TeacherCache

            self.teacher_cache = TeacherCache.build(
                self.teacher, self.images, self.normalization, cfg.teacher_views, cfg.crop_padding, cfg.flip, cfg.seed,
                cfg.teacher_cache_dir, acc, cfg.feature_chunk_size, cfg.crop_fill,
            )

        init = initial_indices(len(self.images), cfg.num_synthetic, cfg.seed)
        x_s = self.normalization.normalize(self.images[init].to(acc.device))
        self.init_indices = init.tolist()
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
        self.step, self.history = 0, []
        if checkpoint is not None:
            self.load_state_dict(checkpoint)
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

    # --- the loop -------------------------------------------------------------------------------------------------

    def train(self):
        """Run to `max_steps`, checkpointing every `save_steps`; write and (optionally) push the distilled set."""
        from tqdm.auto import tqdm

        cfg, acc = self.cfg, self.accelerator
        if acc.is_main_process:
            Path(cfg.output_dir).mkdir(parents=True, exist_ok=True)
            if cfg.overwrite_output_dir and not cfg.resume_from_checkpoint:
                rotate_checkpoints(cfg.output_dir, keep=0)
        start_trackers(acc, cfg, "distill")
        bar = tqdm(total=cfg.max_steps, initial=self.step, desc="distilling", disable=not acc.is_main_process)
        start = time.perf_counter()
        with stop_requests() as requested:
            while self.step < cfg.max_steps:
                tic = time.perf_counter()
                try:
                    loss = self.outer_step()
                except NonFiniteLossError as err:
                    last = list_checkpoints(cfg.output_dir)
                    raise NonFiniteLossError(
                        f"outer loss is {err} at step {self.step}; the last good checkpoint is "
                        f"{str(last[-1]) if last else 'none'}. Lower --learning_rate or set --max_grad_norm."
                    ) from None
                self.history.append(loss)
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4g}")
                if self.step % cfg.logging_steps == 0 or self.step == cfg.max_steps:
                    lr = self.scheduler.get_last_lr()[0]
                    acc.log({"loss": loss, "lr": lr, "step_time_s": time.perf_counter() - tic}, step=self.step)
                stop = bool(acc.reduce(torch.tensor(float(bool(requested)), device=acc.device), "sum").item())
                if self.step % cfg.save_steps == 0 or stop:
                    self.save_checkpoint()
                if stop:
                    bar.close()
                    finish_trackers(acc)
                    raise SystemExit(
                        f"stopped by signal at step {self.step}; resume with --resume_from_checkpoint latest"
                    )
        bar.close()
        self.wall_time_s = time.perf_counter() - start
        if self.step % cfg.save_steps:
            self.save_checkpoint()
        distilled = self.result()
        if acc.is_main_process:
            distilled.save(cfg.output_dir, cfg)
        acc.wait_for_everyone()
        finish_trackers(acc)
        if cfg.push_to_hub and acc.is_main_process:
            from .hub import push_to_hub

            push_to_hub(cfg.output_dir, cfg.push_to_hub, repo_type="dataset", private=cfg.private)
        return distilled

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
            "history": self.history,
            "rng": {"torch": torch.get_rng_state()},
            "config": dataclasses.asdict(self.cfg),
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
        self.step, self.history = state["step"], list(state["history"])
        torch.set_rng_state(state["rng"]["torch"])

    def save_checkpoint(self) -> None:
        """`output_dir/checkpoint-<step>/`, written by the main process only, then old ones rotated out."""
        acc = self.accelerator
        state = self.state_dict()
        if acc.is_main_process:
            save_checkpoint(state, Path(self.cfg.output_dir) / f"checkpoint-{self.step}")
            rotate_checkpoints(self.cfg.output_dir, self.cfg.save_total_limit)
        acc.wait_for_everyone()

    def result(self):
        """The current synthetic set as a `DistilledSet` with its provenance; local folders are named, never located."""
        from . import __version__
        from .distilled_set import DistilledSet
        from .provenance import public_name

        cfg = self.cfg
        source, source_license = describe_source(cfg.dataset, cfg.dataset_revision)
        metadata = {
            "source": {
                **source, "config": cfg.dataset_config, "split": cfg.split, "image_column": self.column,
                "num_images": len(self.images),
            },
            "license": {"id": cfg.license, "from": "`--license`"} if cfg.license else source_license,
            "teacher": self.teacher.describe(),
            "normalization": {"mean": list(self.normalization.mean), "std": list(self.normalization.std)},
            "resolution": self.resolution,
            "channels": self.channels,
            "num_synthetic": cfg.num_synthetic,
            "learner": {"arch": f"convnet{cfg.learner_depth}", "depth": cfg.learner_depth, "width": cfg.learner_width,
                        "norm": cfg.learner_norm, "pooling": cfg.learner_pooling},
            "hyperparameters": {**hyperparameters(cfg), "dataset": public_name(cfg.dataset),
                                "teacher": public_name(cfg.teacher)},
            "seed": cfg.seed,
            "steps": self.step,
            "initial_loss": self.history[0] if self.history else None,
            "final_loss": self.history[-1] if self.history else None,
            "library_version": __version__,
            "wall_time_s": getattr(self, "wall_time_s", None),
        }
        x_s, y_s = self.synthetic_set()
        return DistilledSet(
            pixel_values=x_s.float().cpu(),
            targets=y_s.float().cpu(),
            mean=self.normalization.mean,
            std=self.normalization.std,
            metadata=metadata,
        )


def check_compatible(cfg: DistillConfig, saved: dict, path: Path) -> None:
    """A checkpoint resumes only a run with the same data, teacher, learner and hyperparameters."""
    current = fixed_on_resume(cfg)
    differ = sorted(k for k in current if saved.get(k) != current[k])
    if differ:
        detail = ", ".join(f"{k}={saved.get(k)!r} there vs {current[k]!r} now" for k in differ[:4])
        raise ConfigError(f"checkpoint {str(path)!r} comes from an incompatible config ({detail}); "
                          "use the same settings or start a new --output_dir.")


def distill(cfg: DistillConfig):
    """Distil `cfg.dataset` with `cfg.teacher` and write the result to `cfg.output_dir`. Returns a `DistilledSet`.

    The command's work ends here, so its process group does too; a `Distiller` alone leaves it to its caller, who
    may run several in one launch."""
    distiller = Distiller(cfg)
    distilled = distiller.train()
    distiller.accelerator.state.destroy_process_group()
    return distilled
