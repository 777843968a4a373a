"""The shared training loop of pre-training, fine-tuning and the teacher: logging, the finite check, the slices."""

import math
from types import SimpleNamespace

import pytest
import torch
from accelerate import Accelerator

from hf_ssdd.training_loop import process_slice, run_steps


def test_each_process_takes_its_contiguous_share_and_together_the_whole_batch():
    for batch_size, processes in [(256, 1), (256, 2), (100, 3), (6, 4)]:
        shares = [process_slice(batch_size, SimpleNamespace(num_processes=processes, process_index=i))
                  for i in range(processes)]
        assert torch.equal(torch.cat(shares), torch.arange(batch_size))


def test_the_history_is_the_loss_averaged_over_each_logging_window():
    weight = torch.nn.Parameter(torch.tensor(1.0))
    optimizer = torch.optim.SGD([weight], lr=0.0)  # the loss stays step-dependent only
    losses = [float(step) for step in range(7)]
    history = run_steps(lambda step: weight * losses[step], optimizer, Accelerator(cpu=True), 7, logging_steps=3,
                        name="test")
    assert history == [{"step": 3, "loss": 1.0, "learning_rate": 0.0}, {"step": 6, "loss": 4.0, "learning_rate": 0.0},
                       {"step": 7, "loss": 6.0, "learning_rate": 0.0}]


def test_the_scheduler_steps_after_the_optimiser_and_its_rate_is_logged():
    weight = torch.nn.Parameter(torch.tensor(1.0))
    optimizer = torch.optim.SGD([weight], lr=0.5)
    cosine = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / 4)))
    history = run_steps(lambda step: weight ** 2, optimizer, Accelerator(cpu=True), 4, logging_steps=1, name="test",
                        scheduler=cosine)
    assert [entry["learning_rate"] for entry in history] == pytest.approx(
        [0.5 * 0.5 * (1 + math.cos(math.pi * step / 4)) for step in range(1, 5)])


def test_a_loss_that_is_not_finite_stops_the_run_naming_the_stage():
    weight = torch.nn.Parameter(torch.tensor(1.0))
    with pytest.raises(FloatingPointError, match="fine-tuning loss is nan at step 2; lower --learning_rate"):
        run_steps(lambda step: weight * float("nan"), torch.optim.SGD([weight], lr=0.1), Accelerator(cpu=True), 5,
                  logging_steps=2, name="fine-tuning")


# ---------------------------------------------------------------------------------------------------------------------
# Checkpoints: every save_steps and on a signal; a resumed run ends bitwise where the uninterrupted one does
# ---------------------------------------------------------------------------------------------------------------------


def regression_run(tmp_path, name="run", save_steps=None, resume=None, on_loss=None, max_steps=9):
    """A linear model fitted by SGD with momentum and a step schedule, on batches drawn from `(seed, step)`, logged
    every 4 steps (so a checkpoint may fall inside a logging window): `(weights, history, output_dir)`."""
    from hf_ssdd.checkpoint import Checkpoints, load_checkpoint
    from hf_ssdd.data import step_generator

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    x, y = torch.randn(32, 3), torch.randn(32, 1)
    acc = Accelerator(cpu=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, [5], gamma=0.1)
    model, optimizer = acc.prepare(model, optimizer)
    out = tmp_path / name
    checkpoints = None
    if save_steps is not None:
        state = load_checkpoint(out / f"checkpoint-{resume}") if resume else None
        checkpoints = Checkpoints(out, save_steps, keep=None, config={"test": 1}, resumed=state)

    def step_loss(step):
        batch = torch.randperm(32, generator=step_generator(0, step, 0))[:8]
        loss = torch.nn.functional.mse_loss(model(x[batch]), y[batch])
        return on_loss(step, loss) if on_loss else loss

    history = run_steps(step_loss, optimizer, acc, max_steps, logging_steps=4, name="test", scheduler=scheduler,
                        model=model, checkpoints=checkpoints)
    return [p.detach().clone() for p in model.parameters()], history, out


def test_checkpoints_never_change_a_run_and_a_resumed_run_ends_bitwise_where_the_uninterrupted_one_does(tmp_path):
    plain, plain_history, _ = regression_run(tmp_path)
    every, every_history, out = regression_run(tmp_path, "every-step", save_steps=1)

    assert all(torch.equal(a, b) for a, b in zip(every, plain)) and every_history == plain_history
    assert sorted(p.name for p in out.iterdir()) == [f"checkpoint-{n}" for n in range(1, 9)]  # not the last step
    for step in (2, 4, 6):  # inside a logging window, at its end, after the rate's drop
        resumed, history, _ = regression_run(tmp_path, "every-step", save_steps=100, resume=step)
        assert all(torch.equal(a, b) for a, b in zip(resumed, plain)), f"resumed from step {step}"
        assert history == plain_history


def test_a_signal_checkpoints_after_the_step_in_progress_and_exits_saying_how_to_resume(tmp_path):
    import os
    import signal

    def interrupt_at_step_3(step, loss):
        if step == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return loss

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit, match="test stopped by signal at step 3; resume with --resume_from_checkpoint"):
        regression_run(tmp_path, save_steps=100, on_loss=interrupt_at_step_3)
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["checkpoint-3"]
    assert signal.getsignal(signal.SIGTERM) is before, "the run's handlers are removed again"

    resumed, history, _ = regression_run(tmp_path, save_steps=100, resume=3)
    plain, plain_history, _ = regression_run(tmp_path, "plain")
    assert all(torch.equal(a, b) for a, b in zip(resumed, plain)) and history == plain_history


def test_a_non_finite_loss_is_never_checkpointed_and_the_error_names_the_last_good_checkpoint(tmp_path):
    poison = lambda step, loss: loss * float("nan") if step == 4 else loss  # noqa: E731  (the 5th step)

    with pytest.raises(FloatingPointError, match=r"test loss is nan at step 6; the last good checkpoint is .*"
                                                 r"checkpoint-4; lower --learning_rate"):
        regression_run(tmp_path, save_steps=2, on_loss=poison)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["checkpoint-2", "checkpoint-4"]


def test_a_fresh_run_drops_the_checkpoints_an_older_run_left(tmp_path):
    regression_run(tmp_path, save_steps=3, max_steps=9)
    regression_run(tmp_path, save_steps=4, max_steps=6)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["checkpoint-4"]
