"""bench_step --method mkdt: seconds per MKDT matching iteration, ours against the authors', same shapes, one run.

    python benchmarks/bench_step.py --method mkdt --authors_src /path/to/MKDT [--quick]

Each iteration is the unroll, the matching loss and its backward pass to `X_s`, `Y_s` and the step size (the
optimiser step is negligible beside it), on the inputs of `mkdt_fidelity.py`. The two are timed in alternation,
`rounds` times, so drift of a noisy machine falls on both; the last line is the ratio.
"""

from __future__ import annotations

import argparse
import time

import torch
from mkdt_authors import AuthorsMKDT
from mkdt_fidelity import inputs

from hf_ssdd.methods.mkdt.matching import matching_loss, unroll

SHAPES = {  # name: (m, side, width, depth, dim, syn_steps, batch)
    "cifar-100 2% (MKDT's)": (1000, 32, 128, 3, 512, 40, 256),
    "quick (CPU)": (100, 32, 64, 3, 512, 10, 64),
}


def iteration(loss_fn):
    def run():
        x_s, y_s, eta, loss = loss_fn()
        torch.autograd.grad(loss, (x_s, y_s, eta))
        if torch.accelerator.is_available():
            torch.accelerator.synchronize()
    return run


def run(args: argparse.Namespace) -> None:
    name = "quick (CPU)" if args.quick else "cifar-100 2% (MKDT's)"
    m, side, width, depth, dim, syn_steps, batch = SHAPES[name]
    shape = argparse.Namespace(m=m, channels=3, side=side, width=width, depth=depth, dim=dim, syn_steps=syn_steps,
                               batch=batch, step_size=0.1, segment=0.05)
    device = torch.accelerator.current_accelerator() if torch.accelerator.is_available() else torch.device("cpu")
    model, start, target, x_s, y_s, batches = inputs(shape, torch.float32)
    model = model.to(device)
    start, target = ({n: p.to(device) for n, p in d.items()} for d in (start, target))
    x_s, y_s = x_s.to(device).requires_grad_(), y_s.to(device).requires_grad_()
    eta = torch.tensor(0.1, device=device, requires_grad=True)
    authors = AuthorsMKDT(args.authors_src, 3, side, width, depth, dim, device)

    def ours():
        return x_s, y_s, eta, matching_loss(unroll(model, start, x_s, y_s, eta, batches), start, target)

    def theirs():
        return x_s, y_s, eta, authors.loss(list(start.values()), list(target.values()), x_s, y_s, eta, batches)

    timed = {"ours": iteration(ours), "theirs": iteration(theirs)}
    for fn in timed.values():
        fn()  # warm-up
    seconds = {key: [] for key in timed}
    for _ in range(args.steps or (2 if args.quick else 5)):
        for key, fn in timed.items():
            tic = time.perf_counter()
            fn()
            seconds[key].append(time.perf_counter() - tic)
    mean = {key: sum(v) / len(v) for key, v in seconds.items()}
    print("\n| workload | device | theirs s/iteration | ours s/iteration | theirs/ours |\n|---|---|---|---|---|")
    print(f"| {name}: m={m}, {side}x{side}, ConvNet-{depth} width {width}, {syn_steps} steps of {batch} | {device} "
          f"| {mean['theirs']:.3f} | {mean['ours']:.3f} | {mean['theirs'] / mean['ours']:.2f}x |")
    print(f"bench_step --method mkdt: theirs/ours = {mean['theirs'] / mean['ours']:.2f}x (target >= 1: no slower)")
