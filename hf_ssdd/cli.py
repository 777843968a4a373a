"""`hf-ssdd`: one subcommand per stage, each a typed config handed to the library function of that stage.

    hf-ssdd train-teacher --config recipes/configs/fashion_mnist_teacher.yaml
    hf-ssdd import-teacher barlow_twins_resnet18_cifar100.pt --arch resnet18 --image_mean ... --image_std ...
    hf-ssdd plan --config recipes/configs/fashion_mnist.yaml --teacher outputs/teacher
    hf-ssdd distill --config recipes/configs/fashion_mnist.yaml --teacher outputs/teacher
    hf-ssdd trajectories --config recipes/configs/fashion_mnist_trajectories.yaml --teacher outputs/teacher
    hf-ssdd distill --method mkdt --config recipes/configs/fashion_mnist_mkdt.yaml
    hf-ssdd push outputs/distilled user/fashion-mnist-krr-st
    hf-ssdd pretrain --distilled outputs/distilled --output_dir outputs/pretrained
    hf-ssdd transfer --pretrained outputs/pretrained --target digits --output_dir outputs/transfer
    hf-ssdd benchmark --config benchmarks/fashion_mnist.yaml
    hf-ssdd card outputs/distilled --results outputs/benchmark

The recipes in `recipes/` call `main` too, so `accelerate launch recipes/distill.py ...` runs the same code.
Each stage's own modules are imported only once it runs. A mistake on the command line is one line on stderr,
`hf-ssdd distill: error: argument --max_steps: invalid int value: 'abc' (see hf-ssdd distill --help)`, exit 2.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass

from .config import ConfigError
from .parsing import CommandParser


@dataclass(frozen=True)
class Stage:
    """A subcommand: its config class and the function that runs it (`module:function`, imported lazily). A stage
    `by_method` takes the config class of the method its command line names (`--method`, or its YAML's `method`)."""

    config: str
    run: str
    help: str
    by_method: bool = False


STAGES = {
    "train-teacher": Stage(
        "hf_ssdd.teacher_config:TeacherTrainConfig", "hf_ssdd.teacher_training:train_teacher",
        "Train a self-supervised (Barlow Twins) teacher on the source data; saved in Hub format.",
    ),
    "import-teacher": Stage(
        "hf_ssdd.teacher_config:TeacherImportConfig", "hf_ssdd.teacher_import:import_teacher",
        "Make a ResNet checkpoint trained elsewhere (Barlow Twins, SimCLR, BYOL; torchvision layout) a teacher folder.",
    ),
    "trajectories": Stage(
        "hf_ssdd.trajectories_config:TrajectoriesConfig", "hf_ssdd.trajectories:train_trajectories",
        "Train expert students by MSE to the teacher's representations, every epoch's parameters saved (MKDT).",
    ),
    "plan": Stage(
        "hf_ssdd.methods.config:DistillConfig", "hf_ssdd.distill:plan",
        "Estimate the peak memory of a distillation config (either method) on this device, and what would fit.",
        by_method=True,
    ),
    "distill": Stage(
        "hf_ssdd.methods.config:DistillConfig", "hf_ssdd.distill:distill",
        "Distil a source dataset into synthetic images and target representations (--method krr_st or mkdt).",
        by_method=True,
    ),
    "pretrain": Stage(
        "hf_ssdd.pretrain_config:PretrainConfig", "hf_ssdd.pretraining:pretrain",
        "Pre-train a learner on a distilled set (regression of its targets); saved in Hub format.",
    ),
    "transfer": Stage(
        "hf_ssdd.transfer_config:TransferConfig", "hf_ssdd.transfer:transfer",
        "Fine-tune or linearly probe a (pre-trained) learner on a labelled target; accuracy to results.json.",
    ),
}


def _load(path: str):
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def push(argv: list[str]) -> None:
    """`hf-ssdd push FOLDER REPO_ID`: upload a distilled set (a teacher, trajectories) without checkpoints."""
    parser = CommandParser(prog="hf-ssdd push", description=push.__doc__)
    parser.add_argument("folder", help="Output folder of `distill` (or of `train-teacher` or `trajectories` with "
                                       "--repo_type model).")
    parser.add_argument("repo_id", help="Hub repository, e.g. user/fashion-mnist-krr-st.")
    parser.add_argument("--repo_type", default="dataset", choices=("dataset", "model"))
    parser.add_argument("--private", action="store_true", help="Create the repository as private.")
    args = parser.parse_args(argv)
    from .hub import push_to_hub

    print(push_to_hub(args.folder, args.repo_id, repo_type=args.repo_type, private=args.private))


def benchmark(argv: list[str]) -> None:
    """`hf-ssdd benchmark --config FILE.yaml [--key value ...]`: methods x targets x seeds; resumes if interrupted."""
    parser = CommandParser(prog="hf-ssdd benchmark", description=benchmark.__doc__)
    parser.add_argument("--config", required=True, help="Benchmark YAML (see benchmarks/fashion_mnist.yaml).")
    args, rest = parser.parse_known_args(argv)
    if len(rest) % 2 or not all(key.startswith("--") for key in rest[::2]):
        parser.error(f"overrides come as --key value pairs, got {' '.join(rest)}")
    import yaml

    from .evaluation.config import BenchmarkConfig
    from .evaluation.runner import Benchmark

    overrides = {key[2:]: yaml.safe_load(value) for key, value in zip(rest[::2], rest[1::2])}
    try:
        cfg = BenchmarkConfig.from_yaml(args.config, overrides)
    except ConfigError as err:
        parser.error(str(err))
    rows = Benchmark(cfg).run()
    print(f"benchmark: {len(rows)} results; see {cfg.output_dir}/results.md and results.png")


def card(argv: list[str]) -> None:
    """`hf-ssdd card DISTILLED_DIR --results BENCH_DIR [--push REPO_ID]`: add benchmark results to a set's card."""
    parser = CommandParser(prog="hf-ssdd card", description=card.__doc__)
    parser.add_argument("distilled", help="Output folder of `distill`.")
    parser.add_argument("--results", required=True, help="Output folder of `benchmark` (holding results.jsonl).")
    parser.add_argument("--push", metavar="REPO_ID", help="Also upload the set with its new card to this repo.")
    args = parser.parse_args(argv)
    from .evaluation.report import add_benchmark_results

    print(f"card: {add_benchmark_results(args.distilled, args.results)}")
    if args.push:
        from .hub import push_to_hub

        print(push_to_hub(args.distilled, args.push, repo_type="dataset"))


COMMANDS = {"push": push, "benchmark": benchmark, "card": card}


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {**{name: stage.help for name, stage in STAGES.items()},
                **{name: fn.__doc__.splitlines()[0] for name, fn in COMMANDS.items()}}
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: hf-ssdd {" + ",".join(commands) + "} [--config FILE.yaml] [--key value ...]\n")
        for name, text in commands.items():
            print(f"  {name:<14} {text}")
        print("\nRun `hf-ssdd <command> --help` for the options of one command.")
        raise SystemExit(0 if argv else 2)
    if argv[0] not in commands:
        print(f"hf-ssdd: error: unknown command {argv[0]!r}; choose from {', '.join(commands)}", file=sys.stderr)
        raise SystemExit(2)
    command, rest = argv[0], argv[1:]
    try:
        if command in COMMANDS:
            return COMMANDS[command](rest)
        from .parsing import parse_config

        stage = STAGES[command]
        if stage.by_method:
            from .methods import DEFAULT_METHOD, METHODS, config_class
            from .methods.config import method_of

            method = method_of(rest)  # an unknown one is refused by argparse, with the choices, as any wrong value
            config_cls = config_class(method if method in METHODS else DEFAULT_METHOD)
        else:
            config_cls = _load(stage.config)
        cfg = parse_config(config_cls, rest, prog=f"hf-ssdd {command}")
        _load(stage.run)(cfg)
    except _user_errors() as err:  # evaluated only when something is raised, so startup stays light
        raise SystemExit(f"hf-ssdd {command}: error: {err}") from None


def _user_errors() -> tuple[type[Exception], ...]:
    """Errors that are the user's to fix: printed as one line, never as a traceback."""
    from .hub import PushError
    from .methods.distiller import NonFiniteLossError

    return ConfigError, NonFiniteLossError, PushError, FloatingPointError


if __name__ == "__main__":
    main()
