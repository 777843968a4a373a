"""The one training loop of the stages that fit a network by SGD-like steps: `pretrain`, `transfer` (fine-tuning) and
`train-teacher` (Barlow Twins). The distiller's loop is not this one: its outer step is the method.

    optimizer = sgd(model.parameters(), cfg)        # the paper's SGD: lr, momentum, weight decay from cfg
    model, optimizer = accelerator.prepare(model, optimizer)

    def step_loss(step):                           # the forward of one step, on this process's share of the batch
        indices = batch_indices(m, batch_size, step, seed)[process_slice(batch_size, accelerator)]
        return F.mse_loss(model(pixel_values=x[indices]).logits, y[indices])

    history = run_steps(step_loss, optimizer, accelerator, max_steps, logging_steps=50, name="pre-training",
                        model=model, checkpoints=Checkpoints.of(cfg))  # checkpoint-N/ every save_steps; resumes

The loop owns what the three stages shared line for line: backward, optimiser and scheduler step; the loss window
averaged over steps and processes every `logging_steps`, with the finite check; the tracker scalars `loss`, `lr`
and `step_time_s` (`--report_to`); the history written to `train_log.json`; and, for a stage run from the command
line, its checkpoints (`checkpoint.Checkpoints`): `checkpoint-N/` every `--save_steps` and on SIGINT / SIGTERM,
`--resume_from_checkpoint`, and never a checkpoint of a state whose loss is not finite. A stage keeps its loss, its
data and its views: each step's batch is a function of `(seed, step)` (`data.batch_indices`, `data.step_generator`),
so a run is the same for the same seed and number of processes, and a resumed step needs no RNG state (the global
one is restored anyway, for whatever a model might draw from it).

Why not `transformers.Trainer` (issue 12), measured by `benchmarks/bench_pretrain_epoch.py` on the Fashion-MNIST
recipe (100 28x28 images, 128-d targets, ConvNet-3 width 32, batch 256: one step per epoch; 2 CPU cores; the three
ways interleaved, 200 epochs x 4 rounds): the hand-written loop took 44.3 ms per epoch, this loop 40.4 ms, and
Trainer with the same loss and SGD (no clipping, no saving, no tracker) 51.2 ms, i.e. about 10 ms of overhead per
step, a quarter of a step here (an earlier run on a quieter machine, 100 epochs x 2: 31.1, 30.0 and 31.8 ms).
Speed alone would not decide it; what Trainer would have to be bent to keep does:

- `fit_learner` runs under the caller's `Accelerator`: the benchmark harness pre-trains and fine-tunes dozens of
  learners in one process under one accelerator and its trackers; Trainer builds its own accelerator and tracker
  callbacks per run (and names the scalars `train/loss`, `train/learning_rate`).
- A step's batch is a slice of the `(seed, epoch)` permutation, split over processes by position in the global
  batch; Trainer's sampler draws epochs from a generator's state and shards whole batches per process, so the same
  seed would give other batches, and the views and teacher targets (drawn per `(seed, step)`) would need the step
  passed into `compute_loss` from the trainer's state.
- Its defaults change the protocol silently (gradient clipping at norm 1, AdamW, linear decay): each would be one
  more argument to pin.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from typing import Callable

import torch


def sgd(parameters, cfg) -> torch.optim.SGD:
    """The paper's optimiser: SGD with `cfg.learning_rate`, `cfg.momentum` and `cfg.weight_decay`."""
    return torch.optim.SGD(parameters, lr=cfg.learning_rate, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def process_slice(batch_size: int, accelerator) -> torch.Tensor:
    """Positions `(b,)` of the global batch of `batch_size` that this process trains on: its contiguous share.

    `tensor_split`, not `chunk`: `chunk` gives fewer parts than processes for some sizes (6 over 4: 2, 2, 2)."""
    return torch.arange(batch_size).tensor_split(accelerator.num_processes)[accelerator.process_index]


def run_steps(step_loss: Callable[[int], torch.Tensor], optimizer, accelerator, max_steps: int, *, logging_steps: int,
              name: str, scheduler=None, desc: str | None = None, leave: bool = False,
              on_step: Callable[[int], None] | None = None, model=None, checkpoints=None) -> list[dict]:
    """Run `max_steps` steps of `optimizer` (and `scheduler`) on the losses `step_loss(step)`; return the history.

    Every `logging_steps` steps and at the last one, the mean loss over those steps and over processes is appended
    to the history as `{"step", "loss", "learning_rate"}` and logged to the trackers as `loss`, `lr` and
    `step_time_s`. A loss that is not finite stops the run with a `FloatingPointError` naming the stage (`name`).
    `optimizer` comes from `accelerator.prepare`. `on_step(n)`, if given, runs after the `n`-th step's update (a
    benchmark snapshots the model there).

    With `checkpoints` (a `checkpoint.Checkpoints`) and the prepared `model`, the run resumes from
    `checkpoints.resumed` where it was (weights, optimiser, scheduler, history, the open loss window, the RNG), writes
    `checkpoint-N/` every `checkpoints.save_steps` steps and, on SIGINT / SIGTERM, after the step in progress, then
    exits saying how to resume. A checkpoint is written only after its losses are checked finite, so the last one is
    always good; writing one reads the state and changes nothing, so a resumed run ends bitwise where the
    uninterrupted one does.
    """
    from tqdm.auto import tqdm

    from .checkpoint import stop_requests

    acc = accelerator
    first, history, window = 0, [], []
    if checkpoints is not None:
        checkpoints.begin(acc)
        if checkpoints.resumed is not None:
            first, history, window = restore(checkpoints.resumed, acc, model, optimizer, scheduler)

    def check_finite(mean_loss: float, step: int) -> None:
        if not math.isfinite(mean_loss):
            last = f"; the last good checkpoint is {checkpoints.last()}" if checkpoints is not None else ""
            raise FloatingPointError(f"{name} loss is {mean_loss} at step {step}{last}; lower --learning_rate.")

    tic = time.perf_counter()
    bar = tqdm(range(first, max_steps), desc=desc or name, disable=not acc.is_main_process, leave=leave,
               initial=first, total=max_steps)
    with stop_requests() if checkpoints is not None else nullcontext([]) as requested:
        for step in bar:
            loss = step_loss(step)
            acc.backward(loss)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            optimizer.zero_grad(set_to_none=True)

            window.append(loss.detach())
            if (step + 1) % logging_steps == 0 or step + 1 == max_steps:
                mean_loss = acc.reduce(torch.stack(window).mean(), "mean").item()
                check_finite(mean_loss, step + 1)
                lr = optimizer.param_groups[0]["lr"]
                history.append({"step": step + 1, "loss": mean_loss, "learning_rate": lr})
                step_time, tic = (time.perf_counter() - tic) / len(window), time.perf_counter()
                acc.log({"loss": mean_loss, "lr": lr, "step_time_s": step_time}, step=step + 1)
                bar.set_postfix(loss=f"{mean_loss:.4g}", lr=f"{lr:.2e}")
                window = []
            if on_step is not None:
                on_step(step + 1)
            if checkpoints is None or step + 1 == max_steps:
                continue
            stop = bool(acc.reduce(torch.tensor(float(bool(requested)), device=acc.device), "sum").item())
            if (step + 1) % checkpoints.save_steps == 0 or stop:
                if window:
                    check_finite(acc.reduce(torch.stack(window).mean(), "mean").item(), step + 1)
                state = {"step": step + 1, "history": history, "window": window, "rng": torch.get_rng_state(),
                         "model": acc.unwrap_model(model).state_dict(), "optimizer": optimizer.state_dict(),
                         "scheduler": None if scheduler is None else scheduler.state_dict()}
                checkpoints.save(state, step + 1, acc)
            if stop:
                bar.close()
                raise SystemExit(f"{name} stopped by signal at step {step + 1}; resume with --resume_from_checkpoint "
                                 "latest")
    bar.close()
    return history


def restore(state: dict, accelerator, model, optimizer, scheduler) -> tuple[int, list[dict], list[torch.Tensor]]:
    """Load a checkpoint's `state` into the run; returns its step, history and open loss window."""
    accelerator.unwrap_model(model).load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"])
    return state["step"], list(state["history"]), [loss.to(accelerator.device) for loss in state["window"]]
