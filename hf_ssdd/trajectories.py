"""`trajectories`: expert students trained by MSE to the teacher's representations, every epoch's weights kept.

    hf-ssdd trajectories --config recipes/configs/fashion_mnist_trajectories.yaml
    accelerate launch recipes/trajectories.py --config recipes/configs/paper/cifar100/trajectories.yaml

MKDT (Joshi et al., ICLR 2025) distils by matching these trajectories, and takes as initial images those the experts
find hardest after one epoch (`high_loss_indices`, also KRR-ST's `--init high_loss`). The teacher's representation
of every source image comes from the teacher cache (one view, no augmentation: MKDT's view of the images), so a
distillation that needs them again reads them from disk. Expert `k` is a ConvNet (MKDT: ConvNet-3, width 128,
instance norm) with a linear head to the teacher's `d`, trained by SGD on mini-batches of one seeded permutation
per epoch (the last one shorter, as a `DataLoader` without `drop_last`); its weights at the start and after each
epoch are recorded. Its initial weights and its batches are functions of `(seed, k)` alone, so an expert is the
same whichever process trains it, and on `P` processes each trains the experts `k = rank, rank + P, ...`.

    trajectories/
    ├── expert-000.safetensors      every parameter stacked over epochs: (num_epochs + 1, *shape), float32
    ├── ...
    ├── config.json                 the experts' learner, the source, the teacher, the normalisation (read back here)
    ├── README.md                   the card (a Hub model repo: `hf-ssdd push trajectories user/repo --repo_type model`)
    ├── trajectories_config.yaml    the resolved config (this machine's paths; not pushed)
    └── checkpoint-expert-007/      the expert in progress: epoch-NNN.safetensors so far, state/ (not pushed)

A run stopped by SIGINT / SIGTERM checkpoints its expert at the current batch; `--resume_from_checkpoint latest`
keeps the finished experts and resumes the one in progress bitwise.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from .config import ConfigError, check_compatible, check_output_dir, save_config
from .data import Normalization, Stream, describe_source, step_generator
from .trajectories_config import EPOCH_ORDER_STRIDE, TrajectoriesConfig

CONFIG_FILE = "trajectories_config.yaml"
META_FILE = "config.json"


# ---------------------------------------------------------------------------------------------------------------------
# Reading trajectories
# ---------------------------------------------------------------------------------------------------------------------


def expert_file(k: int) -> str:
    return f"expert-{k:03d}.safetensors"


class Trajectories:
    """The experts of a `trajectories` folder (or Hub model repo): their learner and their weights at any epoch.

    Example:
        >>> trajectories = Trajectories.load("outputs/trajectories")
        >>> model = trajectories.learner()  # a ConvNet with the experts' architecture and head
        >>> params = trajectories.parameters(expert=3, epoch=1)  # {name: tensor}: expert 3 after one epoch
        >>> torch.func.functional_call(model, params, (x,))  # (n, d)
    """

    def __init__(self, folder: Path, meta: dict):
        self.folder, self.meta = Path(folder), meta
        self.num_experts, self.num_epochs = meta["num_experts"], meta["num_epochs"]

    @classmethod
    def load(cls, path_or_repo_id: str, revision: str | None = None) -> Trajectories:
        folder = Path(path_or_repo_id)
        if not folder.exists():
            from huggingface_hub import snapshot_download

            try:
                folder = Path(snapshot_download(str(path_or_repo_id), revision=revision, repo_type="model"))
            except Exception as err:  # noqa: BLE001 (any failure to reach or find it is the user's to fix)
                raise ConfigError(f"trajectories {path_or_repo_id!r} are neither a local folder nor a reachable Hub "
                                  f"model repo ({type(err).__name__}); give the output_dir of `hf-ssdd "
                                  "trajectories`.") from None
        if not (folder / META_FILE).is_file():
            raise ConfigError(f"{str(path_or_repo_id)!r} has no {META_FILE}: give a folder written by `hf-ssdd "
                              "trajectories` (an unfinished run: resume it with --resume_from_checkpoint latest).")
        meta = json.loads((folder / META_FILE).read_text())
        missing = [k for k in range(meta["num_experts"]) if not (folder / expert_file(k)).is_file()]
        if missing:
            raise ConfigError(f"{str(path_or_repo_id)!r} lacks {len(missing)} of its {meta['num_experts']} experts "
                              f"(first: {expert_file(missing[0])}); resume the run that writes them.")
        return cls(folder, meta)

    @property
    def normalization(self) -> Normalization:
        return Normalization(tuple(self.meta["normalization"]["mean"]), tuple(self.meta["normalization"]["std"]))

    def learner(self):
        """A ConvNet of the experts' architecture, with their head to `d` (its own initial weights: load some)."""
        from .learners import ConvNet

        spec = self.meta["learner"]
        return ConvNet(self.meta["channels"], self.meta["resolution"], spec["depth"], spec["width"], spec["norm"],
                       spec["pooling"], out_features=self.meta["dim"], double_width=spec["double_width"])

    def parameters(self, expert: int, epoch: int, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """`{name: tensor}`: the weights of `expert` after `epoch` epochs (0: its initial weights)."""
        from safetensors import safe_open

        if not 0 <= epoch <= self.num_epochs:
            raise ConfigError(f"epoch {epoch} is outside the experts' 0..{self.num_epochs}.")
        with safe_open(self.folder / expert_file(expert), framework="pt") as f:
            return {name: f.get_slice(name)[epoch].to(device) for name in f.keys()}

    def check_source(self, num_images: int, channels: int, resolution: int, teacher) -> None:
        """Refuse to use these experts with another source or teacher than they were trained on."""
        from .teacher_cache import teacher_fingerprint

        meta = self.meta
        have = {"num_images": num_images, "channels": channels, "resolution": resolution,
                "teacher": teacher_fingerprint(teacher)}
        differ = [k for k, v in have.items() if meta[k] != v]
        if differ:
            detail = ", ".join(f"{k} {meta[k]!r} there vs {have[k]!r} here" for k in differ)
            raise ConfigError(f"the trajectories in {self.folder} were trained on another source or teacher "
                              f"({detail}); train them for this one with `hf-ssdd trajectories`.")


def source_targets(teacher, images: torch.Tensor, normalization: Normalization, cache_dir=None, accelerator=None):
    """The teacher's representation of every source image, un-augmented, `(N, d)` (a memory map of its cache)."""
    from .teacher_cache import TeacherCache

    cache = TeacherCache.build(teacher, images, normalization, num_views=1, padding=0, flip=False, seed=0,
                               cache_dir=cache_dir, accelerator=accelerator)
    return cache.features[0]


def target_rows(targets, indices: torch.Tensor) -> torch.Tensor:
    """Rows `indices` `(n,)` of the targets' memory map `(N, d)`, as a float32 tensor `(n, d)` of their own."""
    import numpy as np

    return torch.from_numpy(np.ascontiguousarray(targets[indices.numpy()]))


def expert_losses(trajectories: Trajectories, images: torch.Tensor, normalization: Normalization, targets,
                  epoch: int = 1, accelerator=None, chunk_size: int = 1024) -> torch.Tensor:
    """`(K, N)`: each expert's MSE (mean over the `d` outputs) on every source image, with its weights after
    `epoch` epochs. On `P` processes each computes its experts and the rows are summed with zeros elsewhere, so the
    result is bitwise the same on any number of processes."""
    from accelerate import PartialState
    from accelerate.utils import reduce
    from tqdm.auto import tqdm

    state = accelerator.state if accelerator is not None else PartialState()
    device = state.device
    model = trajectories.learner().to(device).eval()
    mine = range(state.process_index, trajectories.num_experts, state.num_processes)
    params = {k: trajectories.parameters(k, epoch, device) for k in mine}
    losses = torch.zeros(trajectories.num_experts, len(images), device=device)
    chunks = torch.arange(len(images)).split(chunk_size)
    with torch.no_grad():
        for chunk in tqdm(chunks, desc="expert losses", disable=not state.is_main_process, leave=False):
            x = normalization.normalize(images[chunk].to(device))
            y = target_rows(targets, chunk).to(device)
            for k in mine:
                out = torch.func.functional_call(model, params[k], (x,))
                losses[k, chunk.to(device)] = (out - y).pow(2).mean(1)
    losses = reduce(losses, reduction="sum")  # a copy on one process
    return losses.cpu()


def high_loss_indices(trajectories: Trajectories, images: torch.Tensor, teacher, m: int, accelerator=None,
                      cache_dir=None) -> torch.Tensor:
    """`(m,)` indices of the source images with the highest MSE under the experts after one epoch, averaged over
    experts (MKDT's initialisation), hardest first; equal losses go to the lower index."""
    targets = source_targets(teacher, images, trajectories.normalization, cache_dir, accelerator)
    mean = expert_losses(trajectories, images, trajectories.normalization, targets, 1, accelerator).mean(0)  # (N,)
    return mean.argsort(descending=True, stable=True)[:m]


# ---------------------------------------------------------------------------------------------------------------------
# Training the experts
# ---------------------------------------------------------------------------------------------------------------------


def make_expert(cfg: TrajectoriesConfig, k: int, channels: int, resolution: int, dim: int):
    """Expert `k`'s network with its initial weights, a function of `(seed, k)` alone."""
    from .learners import learner_of

    seed = step_generator(cfg.seed, k, Stream.EXPERT_INIT).initial_seed()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return learner_of(cfg, channels, resolution, dim)


def epoch_batches(num_images: int, batch_size: int, seed: int, k: int, epoch: int) -> list[torch.Tensor]:
    """The mini-batches of expert `k`'s epoch: a permutation drawn from `(seed, k, epoch)`, the last one shorter."""
    generator = step_generator(seed, k * EPOCH_ORDER_STRIDE + epoch, Stream.EXPERT_ORDER)
    return list(torch.randperm(num_images, generator=generator).split(batch_size))


def snapshot(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().cpu().clone() for name, p in model.named_parameters()}


class ExpertTrainer:
    """Trains the experts of one process, checkpointing the one in progress after every epoch and when stopped."""

    def __init__(self, cfg: TrajectoriesConfig, images, targets, normalization, channels, resolution, dim,
                 accelerator):
        self.cfg, self.images, self.targets, self.normalization = cfg, images, targets, normalization
        self.channels, self.resolution, self.dim = channels, resolution, dim
        self.accelerator, self.device = accelerator, accelerator.device
        self.out = Path(cfg.output_dir)
        self.steps_per_epoch = -(-len(images) // cfg.batch_size)

    def train(self, k: int, requested: list, bar=None) -> list[float]:
        """Train expert `k` to `expert-k.safetensors`; return its mean loss per epoch. `bar` (a tqdm) advances one
        step an epoch."""
        from safetensors.torch import save_file

        from .atomic import write_file
        from .checkpoint import load_checkpoint, save_checkpoint

        cfg = self.cfg
        folder = self.out / f"checkpoint-expert-{k:03d}"
        model = make_expert(cfg, k, self.channels, self.resolution, self.dim).to(self.device).train()
        optimizer = torch.optim.SGD(model.parameters(), lr=cfg.learning_rate, momentum=cfg.momentum,
                                    weight_decay=cfg.weight_decay)
        epoch, batch, losses, running = 0, 0, [], []
        if (folder / "state").is_dir():
            state = load_checkpoint(folder / "state")
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            epoch, batch, losses, running = state["epoch"], state["batch"], state["losses"], state["running"]
        else:
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            write_file(folder / "epoch-000.safetensors", lambda path: save_file(snapshot(model), path))

        def checkpoint():
            state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
                     "batch": batch, "losses": losses, "running": running}
            shutil.rmtree(folder / "state", ignore_errors=True)
            save_checkpoint(state, folder / "state")

        tic = time.perf_counter()
        while epoch < cfg.num_epochs:
            batches = epoch_batches(len(self.images), cfg.batch_size, cfg.seed, k, epoch)
            while batch < len(batches):
                indices = batches[batch]
                x = self.normalization.normalize(self.images[indices].to(self.device))
                y = target_rows(self.targets, indices).to(self.device)
                loss = F.mse_loss(model(x), y)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"expert {k}: loss is {loss.item()} at epoch {epoch + 1}, batch "
                                             f"{batch + 1}; lower --learning_rate.")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                running.append(loss.item() * len(indices))
                batch += 1
                step = epoch * self.steps_per_epoch + batch
                if step % cfg.logging_steps == 0:
                    self.accelerator.log({"loss": loss.item(), "lr": cfg.learning_rate,
                                          "step_time_s": time.perf_counter() - tic},
                                         step=k * cfg.num_epochs * self.steps_per_epoch + step)
                tic = time.perf_counter()
                if requested:
                    checkpoint()
                    raise SystemExit(f"stopped by signal in expert {k}, epoch {epoch + 1}; resume with "
                                     "--resume_from_checkpoint latest")
            losses.append(sum(running) / len(self.images))
            epoch, batch, running = epoch + 1, 0, []
            if bar is not None:
                bar.update(1)
                bar.set_postfix(expert=k, loss=f"{losses[-1]:.4g}")
            write_file(folder / f"epoch-{epoch:03d}.safetensors", lambda path: save_file(snapshot(model), path))
            checkpoint()
        self.finish(k, folder, losses)
        return losses

    def finish(self, k: int, folder: Path, losses: list[float]) -> None:
        """Stack the epochs' snapshots into `expert-k.safetensors` and drop the checkpoint."""
        from safetensors.torch import load_file

        snapshots = [load_file(folder / f"epoch-{e:03d}.safetensors") for e in range(self.cfg.num_epochs + 1)]
        save_expert(self.out / expert_file(k), snapshots, losses)
        shutil.rmtree(folder)


def save_expert(path: Path, snapshots: list[dict[str, torch.Tensor]], losses: list[float]) -> None:
    """Write one expert's trajectory, `snapshots[e]` its weights after `e` epochs, each parameter stacked over
    epochs `(E + 1, *shape)`, with its mean loss per epoch in the file's metadata."""
    from safetensors.torch import save_file

    from .atomic import write_file

    stacked = {name: torch.stack([s[name] for s in snapshots]).contiguous() for name in snapshots[0]}
    write_file(Path(path), lambda tmp: save_file(stacked, tmp, metadata={"losses": json.dumps(losses)}))


def train_trajectories(cfg: TrajectoriesConfig) -> Trajectories:
    """Train the experts of `cfg` into `cfg.output_dir` (see the module docstring); return them."""
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm

    from .checkpoint import stop_requests
    from .image_store import load_images
    from .parsing import load_yaml
    from .teacher_cache import teacher_fingerprint
    from .teachers import Teacher
    from .tracking import finish_trackers, stage_accelerator, start_trackers

    resuming = cfg.resume_from_checkpoint == "latest"
    check_output_dir(cfg.output_dir, cfg.overwrite_output_dir, resuming=resuming)
    out = Path(cfg.output_dir)
    if resuming and (out / CONFIG_FILE).is_file():
        saved = load_yaml(out / CONFIG_FILE, TrajectoriesConfig)
        check_compatible(cfg, saved, f"the trajectories folder {str(out)!r}")
    acc = stage_accelerator(cfg)
    state = acc.state
    set_seed(cfg.seed)
    with state.main_process_first():
        source = load_images(cfg)
    images = source.images
    if cfg.teacher is None:
        raise ConfigError("no teacher: pass --teacher (a Hub id or a folder from `hf-ssdd train-teacher`).")
    teacher = Teacher.from_pretrained(cfg.teacher, cfg.teacher_revision, cfg.teacher_pooling).to(state.device)
    normalization = Normalization.resolve(images, cfg.mean, cfg.std)
    if state.is_main_process:
        if cfg.overwrite_output_dir and not resuming and out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out / CONFIG_FILE)
    state.wait_for_everyone()
    targets = source_targets(teacher, images, normalization, cfg.teacher_cache_dir, acc)
    trainer = ExpertTrainer(cfg, images, targets, normalization, source.channels, source.resolution, teacher.dim, acc)
    start_trackers(acc, cfg, "trajectories")
    mine = [k for k in range(state.process_index, cfg.num_experts, state.num_processes)
            if not (out / expert_file(k)).is_file()]
    start = time.perf_counter()
    bar = tqdm(total=len(mine) * cfg.num_epochs, desc="expert epochs", disable=not state.is_main_process)
    with stop_requests() as requested:
        for k in mine:
            trainer.train(k, requested, bar)
    bar.close()
    finish_trackers(acc)
    state.wait_for_everyone()
    meta = {
        "num_experts": cfg.num_experts, "num_epochs": cfg.num_epochs, "num_images": len(images),
        "channels": source.channels, "resolution": source.resolution, "dim": teacher.dim,
        "learner": {"arch": f"convnet{cfg.learner_depth}", "depth": cfg.learner_depth, "width": cfg.learner_width,
                    "norm": cfg.learner_norm, "pooling": cfg.learner_pooling,
                    "double_width": cfg.learner_double_width},
        "normalization": {"mean": list(normalization.mean), "std": list(normalization.std)},
        "teacher": teacher_fingerprint(teacher), "teacher_provenance": teacher.describe(),
        "source": {**describe_source(cfg.dataset, cfg.dataset_revision)[0], "split": cfg.split,
                   "image_column": source.column},
        "hyperparameters": _public_hyperparameters(cfg),
        "wall_time_s": time.perf_counter() - start,
    }
    if state.is_main_process:
        from .atomic import write_file
        from .model_cards import trajectories_card

        losses = [_expert_losses(out / expert_file(k)) for k in range(cfg.num_experts)]
        meta["final_losses"] = [row[-1] for row in losses]
        write_file(out / META_FILE, lambda path: path.write_text(json.dumps(meta, indent=2) + "\n"))
        write_file(out / "README.md", lambda path: path.write_text(trajectories_card(cfg, meta, losses)))
    state.wait_for_everyone()
    if cfg.push_to_hub and state.is_main_process:
        from .hub import push_to_hub

        print(f"trajectories: pushed to {push_to_hub(out, cfg.push_to_hub, repo_type='model', private=cfg.private)}")
    return Trajectories.load(str(out))


def _expert_losses(path: Path) -> list[float]:
    from safetensors import safe_open

    with safe_open(path, framework="pt") as f:
        return json.loads(f.metadata()["losses"])


def _public_hyperparameters(cfg: TrajectoriesConfig) -> dict:
    from .config import hyperparameters
    from .provenance import public_name

    values = hyperparameters(cfg)
    return {**values, "dataset": public_name(cfg.dataset), "teacher": public_name(cfg.teacher)}
