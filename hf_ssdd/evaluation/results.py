"""The rows of `results.jsonl`, one per (method, m, arch, seed, target, protocol), and their mean ± std over seeds."""

from __future__ import annotations

import json
from pathlib import Path

import torch

LABEL_FREE = "label-free"  # the `target` and `protocol` of a row of label-free scores
LABEL_FREE_COLUMNS = {"r2": "head R²", "probe_r2": "ridge-probe R²"}


def run_id(row: dict) -> str:
    """What identifies a row: a rerun skips a row whose id is already in results.jsonl."""
    return "|".join(str(row[k]) for k in ("method", "m", "arch", "seed", "target", "protocol"))


def read_results(path: Path) -> list[dict]:
    """Rows of a results.jsonl; a last line cut short by a crash is dropped (it will be run again)."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return rows


def _values(row: dict):
    """`((table, column), value)` pairs of one result row."""
    if row["protocol"] != LABEL_FREE:
        yield (row["protocol"], row["target"]), row["accuracy"]
        return
    for key, column in LABEL_FREE_COLUMNS.items():
        if row.get(key) is not None:
            yield (LABEL_FREE, column), row[key]


def values_by_seed(rows: list[dict]) -> dict:
    """`{(table, column): {(method, m, arch): {seed: value}}}`: what paired comparisons read."""
    groups: dict = {}
    for row in rows:
        for key, value in _values(row):
            groups.setdefault(key, {}).setdefault((row["method"], row["m"], row["arch"]), {})[row["seed"]] = value
    return groups


def summarise(rows: list[dict]) -> dict:
    """`{(table, column): {(method, m, arch): (mean, std, n)}}` over seeds (std with n - 1; 0 for one seed)."""
    summary = {}
    for key, methods in values_by_seed(rows).items():
        summary[key] = {}
        for method, by_seed in methods.items():
            values = torch.tensor([by_seed[seed] for seed in sorted(by_seed)], dtype=torch.float64)
            std = float(values.std()) if len(values) > 1 else 0.0
            summary[key][method] = (float(values.mean()), std, len(values))
    return summary
