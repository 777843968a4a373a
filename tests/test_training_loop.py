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
