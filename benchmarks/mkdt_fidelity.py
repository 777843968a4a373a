"""mkdt_fidelity: one MKDT matching iteration by hf-ssdd and by the authors' code, on identical inputs.

    python benchmarks/mkdt_fidelity.py --authors_src /path/to/MKDT [--width 128 --syn_steps 40 --batch 256 ...]

Both see the same expert segment (start and target weights), the same `X_s`, `Y_s`, step size and mini-batch
order; ours runs `hf_ssdd.methods.mkdt.matching` (functional, a dict of parameters), theirs their `ReparamModule`
around their ConvNet (`mkdt_authors.py`). Printed: the loss and the gradients on `X_s`, `Y_s` and the step size,
relative differences between the two in float32, and of each against our float64 run (the size of float32
rounding for this graph). The goal is a difference of the order of that rounding.
"""

from __future__ import annotations

import argparse

import torch
from mkdt_authors import AuthorsMKDT

from hf_ssdd.learners import ConvNet
from hf_ssdd.methods.mkdt.matching import inner_batches, matching_loss, unroll


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def inputs(args, dtype):
    """The expert segment, the synthetic set, the step size and the batches, from seed 0."""
    torch.manual_seed(0)
    model = ConvNet(args.channels, args.side, args.depth, args.width, "instance", "avg", out_features=args.dim,
                    double_width=False)
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    target = {n: p + args.segment * p.std() * torch.randn_like(p) for n, p in start.items()}
    x_s = torch.randn(args.m, args.channels, args.side, args.side)
    y_s = torch.randn(args.m, args.dim).relu()  # the teacher's pooled ResNet features are >= 0
    batches = inner_batches(args.m, args.batch, args.syn_steps, torch.Generator().manual_seed(1))
    cast = {n: p.to(dtype) for n, p in start.items()}, {n: p.to(dtype) for n, p in target.items()}
    return model.to(dtype), *cast, x_s.to(dtype), y_s.to(dtype), batches


def ours(args, dtype):
    model, start, target, x_s, y_s, batches = inputs(args, dtype)
    x_s.requires_grad_()
    y_s.requires_grad_()
    eta = torch.tensor(args.step_size, dtype=dtype, requires_grad=True)
    loss = matching_loss(unroll(model, start, x_s, y_s, eta, batches), start, target)
    return (loss, *torch.autograd.grad(loss, (x_s, y_s, eta)))


def theirs(args):
    model, start, target, x_s, y_s, batches = inputs(args, torch.float32)
    authors = AuthorsMKDT(args.authors_src, args.channels, args.side, args.width, args.depth, args.dim)
    mine = [p.shape for p in model.parameters()]
    if authors.shapes != mine:
        raise SystemExit(f"the two networks differ: theirs {authors.shapes}, ours {mine}")
    x_s.requires_grad_()
    y_s.requires_grad_()
    eta = torch.tensor(args.step_size, requires_grad=True)
    loss = authors.loss(list(start.values()), list(target.values()), x_s, y_s, eta, batches)
    return (loss, *torch.autograd.grad(loss, (x_s, y_s, eta)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--authors_src", required=True, help="checkout of jiayini1119/MKDT")
    parser.add_argument("--m", type=int, default=100, help="synthetic images")
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--side", type=int, default=32)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--dim", type=int, default=512, help="the teacher's representation size")
    parser.add_argument("--syn_steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--step_size", type=float, default=0.1)
    parser.add_argument("--segment", type=float, default=0.05, help="target = start + this * std * noise")
    args = parser.parse_args()

    ours32, ours64, authors32 = ours(args, torch.float32), ours(args, torch.float64), theirs(args)
    print(f"mkdt_fidelity: m={args.m}, {args.channels}x{args.side}x{args.side}, ConvNet-{args.depth} width "
          f"{args.width} (instance norm), d={args.dim}, {args.syn_steps} inner steps of {args.batch}")
    print(f"loss: ours {ours32[0].item():.8f}, theirs {authors32[0].item():.8f}, float64 {ours64[0].item():.8f}")
    print("\n| quantity | ours vs theirs (float32) | ours float32 vs float64 | theirs float32 vs float64 |")
    print("|---|---|---|---|")
    for name, a, b, exact in zip(("loss", "grad X_s", "grad Y_s", "grad step size"), ours32, authors32, ours64):
        print(f"| {name} | {relative(a, b):.2e} | {relative(a, exact):.2e} | {relative(b, exact):.2e} |")


if __name__ == "__main__":
    main()
