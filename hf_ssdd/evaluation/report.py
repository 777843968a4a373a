"""What a benchmark reports: `results.md` (mean ± std tables, and each distilled set's method against its baselines
and the other methods, paired by seed with 95% intervals), `results.png` (bars with 95% intervals of the mean),
`curve.png` (each row against m, one line per method, and each method minus each baseline paired by seed, when the
benchmark has sets of more than one size), and a distilled set's card."""

from __future__ import annotations

import math
from pathlib import Path

from ..atomic import write_file
from ..config import ConfigError
from ..provenance import public_name
from .config import BenchmarkConfig
from .methods import method_of, row_help, row_order
from .paired import BEST_SUBSET, PairedDifference, comparisons, half_width
from .presets import PRESETS
from .results import LABEL_FREE, LABEL_FREE_COLUMNS, read_results, summarise

PROTOCOL_TITLES = {"linear": "Linear probe", "finetune": "Fine-tuning"}


def _label(method, m, arch, archs) -> str:
    text = method if m is None else f"{method} (m={m})"
    return f"{text} [{arch}]" if len(archs) > 1 else text


def _order(cfg: BenchmarkConfig):
    """Sort key of `(method, m, arch)`: the config's methods in its order, then its shared sets."""
    names = [*row_order(cfg.methods), *cfg.shared]
    return lambda key: (names.index(key[0]) if key[0] in names else 99, key[1] or 0, key[2])


def write_report(rows: list[dict], cfg: BenchmarkConfig, out: Path) -> None:
    """results.md: one table per protocol (accuracy, %) and one for the label-free score; results.png: the bars."""
    summary = summarise(rows)
    archs = sorted({r["arch"] for r in rows})
    lines = [f"# Benchmark: {', '.join(cfg.distilled)}\n", "Mean ± std over seeds "
             f"{', '.join(map(str, cfg.seeds))} (the chart's error bars: 95% intervals of the mean). Protocol preset "
             f"`{cfg.preset}`: {PRESETS[cfg.preset].description}. Methods:\n"]
    present = {r["method"] for r in rows}
    lines += [f"- `{row}`: {row_help(row)}" for row in row_order(cfg.methods) if row in present]
    lines += [f"- `{name}`: the shared set `{public_name(set_id)}`" for name, set_id in cfg.shared.items()]
    tables = [(p, f"{PROTOCOL_TITLES[p]} accuracy (%)", [t.name for t in cfg.targets], 100)
              for p in cfg.protocols if cfg.targets]
    tables.append((LABEL_FREE, "Label-free: R² of the teacher's representations of held-out source images",
                   list(LABEL_FREE_COLUMNS.values()), 1))
    for protocol, title, targets, scale in tables:
        methods = sorted({k for t in targets for k in summary.get((protocol, t), {})}, key=_order(cfg))
        lines += [f"\n## {title}\n", "| method | " + " | ".join(targets) + " |", "|---" * (len(targets) + 1) + "|"]
        for method in methods:
            cells = []
            for target in targets:
                stat = summary.get((protocol, target), {}).get(method)
                digits = 2 if scale == 100 else 3  # accuracy in %, R² as a fraction
                cells.append("" if stat is None else f"{stat[0] * scale:.{digits}f} ± {stat[1] * scale:.{digits}f}")
            lines.append(f"| {_label(*method, archs)} | " + " | ".join(cells) + " |")
    compared = comparisons(rows, tuple(cfg.shared))
    lines += paired_tables(compared, tables)
    sizes = sorted({r["m"] for r in rows if r["m"] is not None})
    if len(sizes) > 1:
        curve_tables = [t for t in tables if t[0] == "linear"] + [t for t in tables if t[0] == LABEL_FREE]
        plot_curve(summary, compared, curve_tables, cfg, archs, sizes, out / "curve.png")
        lines.insert(2, "![data-efficiency curve](curve.png)\n")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    plot(summary, [t for t in tables if any(summary.get((t[0], c)) for c in t[2])], cfg, archs, out / "results.png")


def paired_tables(compared: dict, tables: list) -> list[str]:
    """Markdown lines: per table, `method − baseline` for each m, method and baseline of `compared` (from
    `paired.comparisons`: the shared sets and the other methods among them), mean [95% interval] per column."""
    lines = []
    for protocol, title, columns, scale in tables:
        keys = sorted({k for c in columns for k in compared.get((protocol, c), {})})
        if not keys:
            continue
        unit = "points" if scale == 100 else "R²"
        lines += [f"\n### {title.split(':')[0]}: method − baseline, {unit}, mean [95% interval], paired by seed\n",
                  "| m | method | baseline | " + " | ".join(columns) + " |", "|---" * (len(columns) + 3) + "|"]
        for m, arch, method, baseline in keys:
            cells = [_difference(compared.get((protocol, column), {}).get((m, arch, method, baseline)), scale)
                     for column in columns]
            lines.append(f"| {m} | {method} | {baseline} | " + " | ".join(cells) + " |")
    if lines:
        lines.insert(0, "\n## Paired differences\n\nWithin a seed every method shares the labelled sample, the "
                        "probe's and fine-tuning's randomness and the learner's initialisation, so `method − "
                        "baseline` is compared seed by seed: mean and Student-t 95% interval over the seeds' "
                        "differences. ▲ (▼): the whole interval is above (below) zero.")
    return lines


def _difference(d: PairedDifference | None, scale: int) -> str:
    """`+1.23 [+0.45, +2.01] ▲ (kmeans)`: mean, interval, ▲ (▼) when it is above (below) zero, the baseline a row
    stands for; one seed gives no interval, and says so rather than printing NaN."""
    if d is None:
        return ""
    digits = 2 if scale == 100 else 3
    sign = " ▲" if d.above_zero else " ▼" if d.below_zero else ""
    interval = ("(one seed: no interval)" if math.isnan(d.low)
                else f"[{d.low * scale:+.{digits}f}, {d.high * scale:+.{digits}f}]{sign}")
    return f"{d.mean * scale:+.{digits}f} {interval}{f' ({d.against})' if d.against else ''}"


def plot(summary: dict, tables: list, cfg: BenchmarkConfig, archs: list[str], path: Path) -> None:
    """One panel per table: a group of bars per target, one bar per method, error bars the 95% interval of the mean
    (Student t over seeds; none with one seed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(tables), figsize=(5 * len(tables) + 2, 4.5), squeeze=False)
    for ax, (protocol, title, targets, scale) in zip(axes[0], tables):
        methods = sorted({k for t in targets for k in summary.get((protocol, t), {})}, key=_order(cfg))
        width = 0.8 / max(len(methods), 1)
        for i, method in enumerate(methods):
            stats = [summary.get((protocol, t), {}).get(method, (math.nan, 0, 0)) for t in targets]
            xs = [j + (i - (len(methods) - 1) / 2) * width for j in range(len(targets))]
            errors = [0.0 if s[2] < 2 else half_width(s[1], s[2]) * scale for s in stats]
            ax.bar(xs, [s[0] * scale for s in stats], width, yerr=errors, capsize=2, label=_label(*method, archs))
        ax.set_xticks(range(len(targets)), targets, rotation=15)
        ax.set_title(title if len(title) < 40 else "Label-free R² (held-out source images)", fontsize=10)
        low = min((s[0] - (half_width(s[1], s[2]) if s[2] > 1 else 0)) * scale
                  for t in targets for s in summary.get((protocol, t), {}).values())
        ax.set_ylim(bottom=max(0.0, low - 0.1 * abs(low)) if low > 0 else low * 1.1)
    axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_curve(summary: dict, compared: dict, tables: list, cfg: BenchmarkConfig, archs: list[str],
               sizes: list[int], path: Path) -> None:
    """The data-efficiency curve: one column of panels per column of `tables` (a target's linear probe, a
    label-free score), m on a log axis. Top row: one line per method, its 95% interval of the mean shaded; methods
    that do not depend on m (`scratch`, `full`) are horizontal bands. Bottom row: `method − baseline` paired by
    seed (`compared`, from `paired.comparisons`), its paired 95% interval shaded: the seeds' shared noise (the
    labelled sample, the learner's initialisation) makes the top row's intervals overlap where the differences are
    clear."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(protocol, column, scale) for protocol, _, columns, scale in tables for column in columns
              if summary.get((protocol, column))]
    paired = any(compared.get((protocol, column)) for protocol, column, _ in panels)
    fig, axes = plt.subplots(1 + paired, len(panels), figsize=(4.2 * len(panels) + 2, 4 + 3.5 * paired),
                             squeeze=False)
    colours = {name: f"C{i % 10}" for i, name in enumerate([*row_order(cfg.methods), *cfg.shared])}
    colours[BEST_SUBSET] = "black"
    for ax, (protocol, column, scale) in zip(axes[0], panels):
        stats = summary[(protocol, column)]
        lines = {}
        for (method, m, arch), stat in stats.items():
            lines.setdefault((method, arch), []).append((m, stat))
        for (method, arch), points in sorted(lines.items(), key=lambda item: _order(cfg)((*item[0][:1], 0, ""))):
            points = sorted((sizes if m is None else [m], stat) for m, stat in points)
            xs = [x for ms, _ in points for x in ([sizes[0], sizes[-1]] if len(ms) > 1 else ms)]
            means = [s[0] * scale for ms, s in points for _ in ([0, 1] if len(ms) > 1 else [0])]
            halves = [(half_width(s[1], s[2]) if s[2] > 1 else 0.0) * scale
                      for ms, s in points for _ in ([0, 1] if len(ms) > 1 else [0])]
            style = "--" if len(points[0][0]) > 1 else "o-"
            colour = colours.get(method)
            ax.plot(xs, means, style, color=colour, label=_label(method, None, arch, archs), markersize=4)
            ax.fill_between(xs, [a - h for a, h in zip(means, halves)], [a + h for a, h in zip(means, halves)],
                            color=colour, alpha=0.15, linewidth=0)
        ax.set_title(f"{PROTOCOL_TITLES.get(protocol, 'Label-free')}: {column}", fontsize=10)
        ax.set_ylabel("accuracy (%)" if scale == 100 else "R²")
    if paired:
        for ax, (protocol, column, scale) in zip(axes[1], panels):
            _plot_paired(ax, compared.get((protocol, column), {}), scale, colours, archs)
        axes[1][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    for ax in axes.flat:
        ax.set_xscale("log")
        ax.set_xticks(sizes, [str(m) for m in sizes])
        ax.set_xticks([], minor=True)
    for ax in axes[-1]:
        ax.set_xlabel("m (images in the pre-training set)")
    axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_paired(ax, differences: dict, scale: int, colours: dict, archs: list[str]) -> None:
    """One line per (method, baseline) of `differences` (`{(m, arch, method, baseline): PairedDifference}`) against
    m, coloured by the baseline, drawn solid for the first method and dashed for the next, its paired 95% interval
    shaded, and the zero line that the interval must clear."""
    lines = {}
    for (m, arch, method, baseline), d in differences.items():
        lines.setdefault((method, baseline, arch), []).append((m, d))
    methods = sorted({method for method, _, _ in lines})
    for (method, baseline, arch), points in sorted(lines.items()):
        points.sort(key=lambda point: point[0])
        xs = [m for m, _ in points]
        colour = colours.get(baseline, "grey")
        style = ("o-", "s--", "^:")[methods.index(method) % 3]
        ax.plot(xs, [d.mean * scale for _, d in points], style, color=colour, markersize=4,
                label=f"{method} − {_label(baseline, None, arch, archs)}")
        ax.fill_between(xs, [d.low * scale for _, d in points], [d.high * scale for _, d in points],
                        color=colour, alpha=0.12, linewidth=0)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_ylabel(f"method − baseline ({'points' if scale == 100 else 'R²'})")


def add_benchmark_results(folder: str | Path, results_dir: str | Path) -> Path:
    """Put the benchmark results of this set's size (its methods, its baselines, scratch) into its card, as
    `metadata["transfer_results"]` rows `{table, column, method, m, arch, mean, std, seeds}`; return the card."""
    from ..dataset_card import render_card
    from ..distilled_set import DistilledSet

    folder, results = Path(folder), Path(results_dir) / "results.jsonl"
    rows = read_results(results)
    if not rows:
        raise ConfigError(f"{results} holds no results; run `hf-ssdd benchmark` first.")
    distilled = DistilledSet.load(folder)
    m = len(distilled.pixel_values)
    summary = summarise([row for row in rows if row["m"] in (m, None)])
    if not any(method == method_of(distilled) for stats in summary.values() for method, _, _ in stats):
        raise ConfigError(f"{results} has no result for a distilled set of m={m}; is it this set's benchmark?")
    distilled.metadata["transfer_results"] = [
        {"table": table, "column": column, "method": method, "m": size, "arch": arch, "mean": mean, "std": std,
         "seeds": n}
        for (table, column), stats in summary.items() for (method, size, arch), (mean, std, n) in stats.items()
    ]
    write_file(folder / "README.md", lambda path: path.write_text(render_card(distilled)))
    return folder / "README.md"
