"""`Distiller`: what every method's run shares, so that each method writes only its step and its state.

    distiller = METHOD_DISTILLER(cfg)     # output folder checked, checkpoint read, source, teacher, initial images
    distilled = distiller.train()        # outer steps to max_steps; the set written, then pushed if asked

The base class owns the run around the step: the output folder (refused before any work when it would mix runs),
resuming from `checkpoint-N/` (refused when the config differs in a hyperparameter), the accelerator and its
trackers, the source images and their normalisation, the teacher, the real images the set starts from (`--init`),
the loop with its progress bar, logging, checkpoints every `save_steps` and on SIGINT / SIGTERM, the guard that stops
on a non-finite loss with the last good checkpoint named, and the `DistilledSet` with its provenance.

A method subclasses it and provides `outer_step() -> loss`, `state_dict()` / `load_state_dict()` (everything a
resumed run needs beyond the config), `synthetic_set() -> (X_s, Y_s)`, `learner()` (the card's description of the
network it distils for), and optionally `scalars()` (what to log beside the loss) and `set_metadata()` (what the set
records beyond the common provenance, e.g. a learned step size).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from ..checkpoint import Checkpoints, stop_requests
from ..config import ConfigError, check_output_dir, hyperparameters
from ..data import Normalization, describe_source
from ..image_store import load_images
from ..subsets import initial_indices
from ..tracking import finish_trackers, stage_accelerator, start_trackers
from .config import DistillConfig


class NonFiniteLossError(RuntimeError):
    """The outer loss became NaN or infinite; the last good checkpoint is kept."""


class Distiller:
    """The run of one distillation method; see the module docstring for what a subclass provides.

    After `__init__`: `cfg`, `accelerator`, `images` (uint8 `(N, C, H, W)`), `resolution`, `channels`, `column`,
    `normalization`, `teacher`, `trajectories` (when `cfg.trajectories` names some), `init_indices` (the `m` source
    images the set starts from), `checkpoint` (the state to resume, or None), `step` and `history`.
    """

    nan_advice = "Lower the learning rate."  # what the non-finite loss error tells the user to change

    def __init__(self, cfg: DistillConfig, accelerator=None, mixed_precision: str = "no"):
        from accelerate.utils import set_seed

        from ..teachers import Teacher

        check_output_dir(cfg.output_dir, cfg.overwrite_output_dir, resuming=bool(cfg.resume_from_checkpoint))
        self.checkpoints = Checkpoints.of(cfg)
        self.checkpoint = self.checkpoints.resumed
        self.cfg = cfg
        self.accelerator = accelerator or stage_accelerator(cfg, mixed_precision=mixed_precision)
        acc = self.accelerator
        set_seed(cfg.seed)  # our own draws come from `step_generator`; this covers everything else

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
        if cfg.teacher is None:
            raise ConfigError("no teacher: pass --teacher (a Hub id or a folder from `hf-ssdd train-teacher`).")
        self.teacher = Teacher.from_pretrained(cfg.teacher, cfg.teacher_revision, cfg.teacher_pooling).to(acc.device)
        self.trajectories = None
        if cfg.trajectories:
            from ..trajectories import Trajectories

            self.trajectories = Trajectories.load(cfg.trajectories, cfg.trajectories_revision)
            self.trajectories.check_source(len(self.images), self.channels, self.resolution, self.teacher)
        self.init_indices = self.initial_indices().tolist()
        self.step, self.history = 0, []

    def initial_indices(self) -> torch.Tensor:
        """`(m,)` indices of the source images the set starts from, by `cfg.init`."""
        cfg = self.cfg
        if cfg.init == "random":
            return initial_indices(len(self.images), cfg.num_synthetic, cfg.seed)
        from ..trajectories import high_loss_indices

        return high_loss_indices(self.trajectories, self.images, self.teacher, cfg.num_synthetic, self.accelerator,
                                 cfg.teacher_cache_dir)

    # --- what a method provides -----------------------------------------------------------------------------------

    def outer_step(self) -> float:
        """One step of the method, on every process; returns the loss averaged over processes. A non-finite loss
        raises `NonFiniteLossError(loss)` before anything is updated."""
        raise NotImplementedError

    def synthetic_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole synthetic set `(m, C, H, W)`, `(m, d)` on every process, without gradient."""
        raise NotImplementedError

    def state_dict(self) -> dict:
        """Everything a resumed run needs (with `step`, `history` and `rng`). Every process calls it."""
        raise NotImplementedError

    def load_state_dict(self, state: dict) -> None:
        raise NotImplementedError

    def learner(self) -> dict:
        """The card's description of the network the set is distilled for: `arch` (`convnet<depth>`), `depth`,
        `width`, `norm`, `pooling` (what `pretrain` builds by default)."""
        raise NotImplementedError

    def scalars(self) -> dict[str, float]:
        """What the trackers log beside the loss (e.g. the learning rate)."""
        return {}

    def set_metadata(self) -> dict:
        """What the set records beyond the provenance every method gives."""
        return {}

    def base_state(self) -> dict:
        """The part of `state_dict` every method has."""
        return {"step": self.step, "history": self.history, "rng": {"torch": torch.get_rng_state()}}

    def load_base_state(self, state: dict) -> None:
        self.step, self.history = state["step"], list(state["history"])
        torch.set_rng_state(state["rng"]["torch"])

    # --- the loop -------------------------------------------------------------------------------------------------

    def train(self):
        """Run to `max_steps`, checkpointing every `save_steps`; write and (optionally) push the distilled set."""
        from tqdm.auto import tqdm

        cfg, acc = self.cfg, self.accelerator
        if acc.is_main_process:
            Path(cfg.output_dir).mkdir(parents=True, exist_ok=True)
        self.checkpoints.begin(acc)
        start_trackers(acc, cfg, "distill")
        bar = tqdm(total=cfg.max_steps, initial=self.step, desc="distilling", disable=not acc.is_main_process)
        start = time.perf_counter()
        with stop_requests() as requested:
            while self.step < cfg.max_steps:
                tic = time.perf_counter()
                try:
                    loss = self.outer_step()
                except NonFiniteLossError as err:
                    raise NonFiniteLossError(
                        f"outer loss is {err} at step {self.step}; the last good checkpoint is "
                        f"{self.checkpoints.last()}. {self.nan_advice}"
                    ) from None
                self.history.append(loss)
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4g}")
                if self.step % cfg.logging_steps == 0 or self.step == cfg.max_steps:
                    acc.log({"loss": loss, **self.scalars(), "step_time_s": time.perf_counter() - tic},
                            step=self.step)
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
            from ..hub import push_to_hub

            push_to_hub(cfg.output_dir, cfg.push_to_hub, repo_type="dataset", private=cfg.private)
        return distilled

    def save_checkpoint(self) -> None:
        """`output_dir/checkpoint-<step>/`, written by the main process only, then old ones rotated out."""
        self.checkpoints.save(self.state_dict(), self.step, self.accelerator)

    def result(self):
        """The current synthetic set as a `DistilledSet` with its provenance; local folders are named, never located."""
        from .. import __version__
        from ..distilled_set import DistilledSet
        from ..provenance import public_name

        cfg = self.cfg
        source, source_license = describe_source(cfg.dataset, cfg.dataset_revision)
        metadata = {
            "method": cfg.method,
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
            "learner": self.learner(),
            "hyperparameters": {**hyperparameters(cfg), "dataset": public_name(cfg.dataset),
                                "teacher": public_name(cfg.teacher),
                                "trajectories": public_name(cfg.trajectories) if cfg.trajectories else None},
            "seed": cfg.seed,
            "steps": self.step,
            "initial_loss": self.history[0] if self.history else None,
            "final_loss": self.history[-1] if self.history else None,
            "library_version": __version__,
            "wall_time_s": getattr(self, "wall_time_s", None),
            **self.set_metadata(),
        }
        x_s, y_s = self.synthetic_set()
        return DistilledSet(
            pixel_values=x_s.float().cpu(),
            targets=y_s.float().cpu(),
            mean=self.normalization.mean,
            std=self.normalization.std,
            metadata=metadata,
        )
