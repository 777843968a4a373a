"""bench_pretrain_epoch: seconds per pre-training epoch, the hand-written loop against `transformers.Trainer`.

    python benchmarks/bench_pretrain_epoch.py [--epochs 200] [--rounds 3]

The Fashion-MNIST recipe's pre-training: a distilled set of 100 28x28 grey images with 128-d targets, ConvNet-3
(32-64-128), SGD lr 0.1 momentum 0.9 weight decay 1e-3, batch 256 -> one step of 100 images per epoch. Three ways,
interleaved in one run (machines are noisy; only numbers measured together count):

- `before`: `pretraining.fit` as of commit 1882099 (its own loop), read from git;
- `after`: `pretraining.fit_learner` of this tree (the shared loop of `hf_ssdd/training_loop.py`);
- `trainer`: the same MSE loss and optimiser through `transformers.Trainer` (no saving, no tracker, no tqdm).

Each line is seconds per epoch averaged over `--epochs` epochs; construction (the Trainer's and its accelerator's)
is timed apart, since the benchmark harness builds one per pre-training run.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from hf_ssdd import pretraining
from hf_ssdd.data import Normalization
from hf_ssdd.modeling import learner_config, new_model
from hf_ssdd.pretrain_config import PretrainConfig

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "1882099"  # the commit whose pretraining.fit had its own loop


def old_pretraining():
    """`hf_ssdd.pretraining` as of `BEFORE`, imported from git as `hf_ssdd._pretraining_before`."""
    source = subprocess.run(["git", "show", f"{BEFORE}:hf_ssdd/pretraining.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "_pretraining_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("hf_ssdd._pretraining_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def recipe_model():
    torch.manual_seed(0)
    return new_model(learner_config("convnet", 1, 28, 128, depth=3, width=32))


def run_loop(fit, data, epochs: int) -> float:
    from accelerate import Accelerator

    model, cfg = recipe_model(), PretrainConfig(num_epochs=epochs, logging_steps=50, report_to="none")
    acc = Accelerator(cpu=True)
    tic = time.perf_counter()
    fit(model, data, cfg, acc)
    return (time.perf_counter() - tic) / epochs


def run_trainer(data, epochs: int) -> tuple[float, float]:
    """`(seconds per epoch, seconds to build the Trainer)` for the same loss and optimiser through Trainer."""
    from transformers import Trainer, TrainingArguments

    class Pairs(torch.utils.data.Dataset):
        def __len__(self):
            return len(data.pixel_values)

        def __getitem__(self, i):
            return {"pixel_values": data.pixel_values[i], "target": data.targets[i]}

    class MSETrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            outputs = model(pixel_values=inputs["pixel_values"]).logits
            loss = F.mse_loss(outputs, inputs["target"])
            return (loss, outputs) if return_outputs else loss

    model = recipe_model()
    tic = time.perf_counter()
    args = TrainingArguments(
        output_dir=tempfile.mkdtemp(), per_device_train_batch_size=len(data.pixel_values), num_train_epochs=epochs,
        learning_rate=0.1, weight_decay=1e-3, optim="sgd", optim_args="momentum=0.9", lr_scheduler_type="constant",
        max_grad_norm=0.0, save_strategy="no", report_to="none", disable_tqdm=True, logging_steps=50, use_cpu=True,
        seed=0, remove_unused_columns=False, dataloader_num_workers=0,  # max_grad_norm 0: no clipping, as the paper
    )
    trainer = MSETrainer(model=model, args=args, train_dataset=Pairs())
    built = time.perf_counter() - tic
    tic = time.perf_counter()
    trainer.train()
    momentum = trainer.optimizer.param_groups[0]["momentum"]
    assert momentum == 0.9 and trainer.optimizer.param_groups[0]["weight_decay"] == 1e-3, "not the paper's SGD"
    return (time.perf_counter() - tic) / epochs, built


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from accelerate.state import AcceleratorState

    torch.manual_seed(0)
    data = pretraining.TrainingSet(torch.randn(100, 1, 28, 28), torch.randn(100, 128), Normalization((0.0,), (1.0,)))
    before = old_pretraining()
    times = {"before": [], "after": [], "trainer": []}
    built = []
    for _ in range(args.rounds):
        AcceleratorState._reset_state(True)
        times["before"].append(run_loop(before.fit, data, args.epochs))
        AcceleratorState._reset_state(True)
        times["after"].append(run_loop(pretraining.fit_learner, data, args.epochs))
        AcceleratorState._reset_state(True)
        seconds, build = run_trainer(data, args.epochs)
        times["trainer"].append(seconds)
        built.append(build)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.epochs} epochs x {args.rounds} rounds")
    for name, values in times.items():
        mean = sum(values) / len(values)
        print(f"{name:8s} {1000 * mean:7.2f} ms/epoch  (rounds: {', '.join(f'{1000 * v:.2f}' for v in values)})")
    print(f"trainer construction {1000 * sum(built) / len(built):.1f} ms per run")


if __name__ == "__main__":
    main()
