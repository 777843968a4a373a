"""From a command line to a typed config: dataclass defaults < `--config file.yaml` < `--key value`.

`parse_config` turns a command line into a stage's config dataclass with `transformers.HfArgumentParser`; the YAML
file is spliced in *before* the user's own arguments, so argparse type-checks both the same way and the command line
wins. Unknown keys are errors, never silently ignored, and every mistake is one line on stderr naming the option and
the value, exit status 2, before any work is done.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml
from transformers import HfArgumentParser  # transformers is loaded with the package anyway (see __init__)

from .config import ConfigError

C = TypeVar("C")


class CommandParser(argparse.ArgumentParser):
    """argparse for every hf-ssdd command: help text is printed as written (a `%` in it is not a format), and a
    mistake is one line on stderr, `hf-ssdd distill: error: argument --max_steps: invalid int value: 'abc'`, exit 2."""

    def add_argument(self, *args, **kwargs):
        if kwargs.get("help"):
            kwargs["help"] = kwargs["help"].replace("%", "%%")
        return super().add_argument(*args, **kwargs)

    def error(self, message: str):
        message = " ".join(message.splitlines())
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class ConfigParser(CommandParser, HfArgumentParser):
    """`HfArgumentParser` (one option per dataclass field, its `metadata` the `add_argument` keywords, so a field's
    `choices` are checked by argparse) with the literal help and one-line errors of `CommandParser`. A field's `role`
    (see `config.hyperparameters`) is ours, not argparse's; a field with `positional: True` may also be given as the
    command's positional argument (`hf-ssdd import-teacher CHECKPOINT`), which wins over its option and YAML key."""

    def add_argument(self, *args, **kwargs):
        kwargs.pop("role", None)
        if kwargs.pop("positional", False):
            name = args[0].removeprefix("--")  # same dest as the option; set only when given (SUPPRESS)
            super().add_argument(name, nargs="?", default=argparse.SUPPRESS, metavar=name.upper(),
                                 help=f"Same as --{name}.")
        return super().add_argument(*args, **kwargs)


def load_yaml(path: str | Path, config_cls: type) -> dict[str, Any]:
    """Read a YAML config; reject keys that `config_cls` does not have, and a null or a list its field cannot take
    (YAML can say both, the command line neither, so argparse would not see them)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist.")
    values = yaml.safe_load(path.read_text()) or {}
    if not isinstance(values, dict):
        raise ConfigError(f"{path} must hold a mapping of key: value, not {type(values).__name__}.")
    known = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(values) - known)
    misplaced = _misplaced(config_cls, [f"--{key}" for key in unknown])
    if misplaced:
        raise ConfigError(f"{path}: {misplaced}")
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in {path}; valid keys: {', '.join(sorted(known))}.")
    hints = typing.get_type_hints(config_cls)
    for key, value in values.items():
        types = typing.get_args(hints[key]) or (hints[key],)  # `list[int] | None` -> (list[int], NoneType)
        if value is None and type(None) not in types:
            raise ConfigError(f"{key}=null in {path}: {key} needs a value; give one or leave the key out.")
        if isinstance(value, list) and not any(typing.get_origin(t) is list for t in (hints[key], *types)):
            raise ConfigError(f"{key}={value} in {path} is a list; {key} takes one value.")
    return values


def _misplaced(config_cls: type, unknown: list[str]) -> str | None:
    """What `config_cls.misplaced` says of the first unknown option that another config owns (an option of another
    distillation method), or None."""
    explain = getattr(config_cls, "misplaced", None)
    for arg in unknown if explain else ():
        if arg.startswith("--") and (message := explain(arg[2:].split("=", 1)[0].replace("-", "_"))):
            return message
    return None


def _as_argv(values: dict[str, Any]) -> list[str]:
    """`{'max_steps': 10, 'teacher': '-t', 'mean': [0.5]}` -> `['--max_steps=10', '--teacher=-t', '--mean', '0.5']`
    (nulls left out; `=` keeps a value that starts with `-` a value)."""
    argv = []
    for key, value in values.items():
        if isinstance(value, (list, tuple)):
            argv += [f"--{key}", *(str(v) for v in value)]
        elif value is not None:
            argv.append(f"--{key}={value}")
    return argv


def parse_config(config_cls: type[C], argv: list[str] | None = None, prog: str | None = None) -> C:
    """Build `config_cls` from defaults, then `--config FILE.yaml`, then the remaining `--key value` pairs.

    Any mistake, in the YAML file or on the command line, exits with one line on stderr (see `CommandParser`).
    Options are spelled out in full: `--max_step` is an error, not `--max_steps`.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    pre = CommandParser(prog=prog, add_help=False, allow_abbrev=False)
    pre.add_argument("--config")
    known, rest = pre.parse_known_args(argv)

    parser = ConfigParser(config_cls, prog=prog, description=(config_cls.__doc__ or "").strip(), allow_abbrev=False)
    parser.add_argument("--config", help="YAML file of defaults; command-line arguments override it.")
    try:
        yaml_values = load_yaml(known.config, config_cls) if known.config else {}
        parser.set_defaults(**{k: None for k, v in yaml_values.items() if v is None})
        namespace, unknown = parser.parse_known_args(_as_argv(yaml_values) + rest)
        if unknown:
            parser.error(_misplaced(config_cls, unknown) or f"unrecognized arguments: {' '.join(unknown)}")
        kwargs = {f.name: getattr(namespace, f.name) for f in dataclasses.fields(config_cls) if f.init}
        return config_cls(**kwargs)
    except ConfigError as err:
        parser.error(str(err))
