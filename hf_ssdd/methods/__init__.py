"""The distillation methods, one folder each with its config beside its code, found by name in `METHODS`.

    hf_ssdd/methods/
    ├── config.py        DistillConfig: what every method shares (source, teacher, output, init, checkpoints)
    ├── distiller.py     Distiller: the loop every method shares (checkpoints, SIGTERM, NaN guard, the set, push)
    ├── krr_st/          KRR-ST (Lee et al., ICLR 2024): config, krr, pool, memory, distiller
    └── mkdt/            MKDT (Joshi et al., ICLR 2025): config, matching, memory, distiller

A method is a config class (a `DistillConfig`), a `Distiller` subclass and a memory planner, named here as
`module:attribute` so that choosing one imports only that one. `hf-ssdd distill --method NAME` and `hf-ssdd plan`
read the method first, then parse the rest of the command line with its config; nothing outside this folder names a
method.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Method:
    """A distillation method: its config class, its distiller and its memory planner, as `module:attribute`; and
    what a set's card says of it: its name, its paper in a sentence, its BibTeX, and its pre-training recipe
    (`recipe["learning_rate"]` None: the set's learned `step_size`)."""

    config: str
    distiller: str
    plan: str
    help: str
    name: str
    paper: str
    citation: str
    recipe: dict


METHODS = {
    "krr_st": Method(
        "hf_ssdd.methods.krr_st.config:KRRSTConfig", "hf_ssdd.methods.krr_st.distiller:KRRSTDistiller",
        "hf_ssdd.methods.krr_st.memory:plan",
        "KRR-ST: kernel ridge regression onto learnable targets over a pool of learners (Lee et al., ICLR 2024).",
        name="KRR-ST",
        paper="KRR-ST, kernel ridge regression on self-supervised targets (Lee et al., ICLR 2024, "
              "[arXiv:2310.06511](https://arxiv.org/abs/2310.06511))",
        citation="""@inproceedings{lee2024selfsupervised,
  title     = {Self-Supervised Dataset Distillation for Transfer Learning},
  author    = {Lee, Dong Bok and Lee, Seanie and Ko, Joonho and Kawaguchi, Kenji and Lee, Juho and Hwang, Sung Ju},
  booktitle = {International Conference on Learning Representations},
  year      = {2024},
  url       = {https://arxiv.org/abs/2310.06511}
}""",
        recipe={"learning_rate": 0.1, "weight_decay": 1e-3, "epochs": 1000},
    ),
    "mkdt": Method(
        "hf_ssdd.methods.mkdt.config:MKDTConfig", "hf_ssdd.methods.mkdt.distiller:MKDTDistiller",
        "hf_ssdd.methods.mkdt.memory:plan",
        "MKDT: trajectory matching of students distilled from the teacher (Joshi et al., ICLR 2025).",
        name="MKDT",
        paper="MKDT, matching the training trajectories of students distilled from the teacher (Joshi et al., "
              "ICLR 2025, [arXiv:2410.02116](https://arxiv.org/abs/2410.02116))",
        citation="""@inproceedings{joshi2025dataset,
  title     = {Dataset Distillation via Knowledge Distillation: Towards Efficient Self-Supervised Pre-Training of
               Deep Networks},
  author    = {Joshi, Siddharth and Ni, Jiayi and Mirzasoleiman, Baharan},
  booktitle = {International Conference on Learning Representations},
  year      = {2025},
  url       = {https://arxiv.org/abs/2410.02116}
}""",
        recipe={"learning_rate": None, "weight_decay": 1e-4, "epochs": 20},
    ),
}
DEFAULT_METHOD = "krr_st"


def load(path: str):
    """`"package.module:attribute"` -> the attribute, importing its module."""
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def made_by(metadata: dict) -> str:
    """The name of the method that made a distilled set, from its metadata (sets saved before there were methods
    are KRR-ST's)."""
    return metadata.get("method") or DEFAULT_METHOD


def method_named(name: str) -> Method:
    """The registered method `name`, or a one-line `ConfigError` listing them."""
    from ..config import ConfigError

    if name not in METHODS:
        raise ConfigError(f"method={name!r} is not one of {', '.join(METHODS)}.")
    return METHODS[name]


def config_class(name: str) -> type:
    """The config class of the method `name`."""
    return load(method_named(name).config)


def owner_of(option: str) -> list[str]:
    """The methods whose config has the field `option` (to name them when another method is given it)."""
    import dataclasses

    return [name for name in METHODS if option in {f.name for f in dataclasses.fields(config_class(name))}]
