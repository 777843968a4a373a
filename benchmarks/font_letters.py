"""Font letters: a transfer target unlike Fashion-MNIST, with headroom, rendered from the fonts Debian packages ship.

    apt-get install -y $(python benchmarks/font_letters.py --print_packages)
    python benchmarks/font_letters.py --output_dir benchmarks/targets/font-letters

In the manner of notMNIST (Bulatov, 2011): the ten letters A-J, one class each, each rendered from every font of
`PACKAGES` that has them, as a 28 x 28 grayscale glyph (white on black, as Fashion-MNIST's objects), scaled to fit,
then jittered (scale, rotation, shift) so that no two renderings are the same image. The test fonts are those of
`TEST_PACKAGES`, whole packages that no training image comes from: a score is how well a learner generalises to
typefaces (foundries, styles) it has never seen, which leaves headroom above what Fashion-MNIST's texture features
give. A font is kept only if its ten glyphs exist and differ (a font without Latin capitals renders ten copies of
its missing-glyph box).

Writes `data/{train,test}-00000-of-00001.parquet` (columns `image`, `label` (ClassLabel A-J), `font`, `package`),
`README.md` (the dataset card: classes, counts, fonts and licences) and `preview.png`, so that
`load_dataset(output_dir)` and `hf-ssdd transfer --target output_dir` read it.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import random
import re
import subprocess
from pathlib import Path

LETTERS = "ABCDEFGHIJ"
SIDE = 28
PACKAGES = (  # Latin fonts of Debian 12, from text faces to handwriting; each has a DEP-5 copyright file
    "fonts-dejavu-core", "fonts-dejavu-extra", "fonts-liberation2", "fonts-freefont-ttf", "fonts-urw-base35",
    "fonts-texgyre", "fonts-crosextra-caladea", "fonts-crosextra-carlito", "fonts-cantarell", "fonts-ebgaramond",
    "fonts-lato", "fonts-open-sans", "fonts-roboto-unhinted", "fonts-linuxlibertine", "fonts-cmu",
    "fonts-inconsolata", "fonts-hack", "fonts-junicode", "fonts-comic-neue", "fonts-dkg-handwriting", "fonts-breip",
    "fonts-femkeklaver", "fonts-humor-sans", "fonts-isabella", "fonts-beteckna", "fonts-quicksand",
    "fonts-league-spartan", "fonts-anonymous-pro", "fonts-jetbrains-mono", "fonts-mononoki", "fonts-firacode",
    "fonts-croscore", "fonts-sil-andika", "fonts-sil-charis", "fonts-sil-gentiumplus", "fonts-adf-accanthis",
    "fonts-adf-baskervald", "fonts-adf-berenis", "fonts-adf-gillius", "fonts-adf-ikarius", "fonts-adf-irianis",
    "fonts-adf-libris", "fonts-adf-mekanus", "fonts-adf-oldania", "fonts-adf-romande", "fonts-adf-solothurn",
    "fonts-adf-switzera", "fonts-adf-tribun", "fonts-adf-universalis", "fonts-adf-verana",
)
TEST_PACKAGES = (  # about a fifth of the fonts, every kind of face among them: serif, sans, mono, handwriting
    "fonts-texgyre", "fonts-open-sans", "fonts-jetbrains-mono", "fonts-dkg-handwriting", "fonts-humor-sans",
    "fonts-sil-charis", "fonts-adf-gillius", "fonts-adf-romande", "fonts-ebgaramond", "fonts-quicksand",
)
FONT_FILE = re.compile(r".+\.(ttf|otf)$", re.IGNORECASE)


def installed_fonts(packages=PACKAGES) -> dict[str, list[Path]]:
    """`{package: its font files}`, from `dpkg -L`; a package not installed is an error naming the command."""
    fonts, missing = {}, []
    for package in packages:
        listing = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True)
        if listing.returncode != 0:
            missing.append(package)
            continue
        files = sorted(Path(line) for line in listing.stdout.splitlines() if FONT_FILE.fullmatch(line))
        files = {f.stem: f for f in files if f.is_file() and not f.is_symlink()}  # one of a face's formats
        fonts[package] = sorted(files.values())
    if missing:
        raise SystemExit(f"not installed: {' '.join(missing)}; run: apt-get install -y {' '.join(missing)}")
    return fonts


def licences(package: str) -> str:
    """The licences a package's DEP-5 copyright file names for its files, e.g. `OFL-1.1`."""
    path = Path("/usr/share/doc") / package / "copyright"
    text = path.read_text(errors="replace") if path.is_file() else ""
    names = re.findall(r"^License:\s*(\S.*)$", text, flags=re.MULTILINE)
    return ", ".join(dict.fromkeys(n.strip() for n in names)) or "see the package's copyright file"


def glyphs(font_path: Path, size: int = 96):
    """The ten letters of a font as tight grayscale crops (PIL images), or None if any is missing or they are not
    ten different shapes."""
    from PIL import Image, ImageDraw, ImageFont

    try:
        font = ImageFont.truetype(str(font_path), size)
    except OSError:
        return None
    crops = []
    for letter in LETTERS:
        canvas = Image.new("L", (size * 2, size * 2))
        ImageDraw.Draw(canvas).text((size // 2, size // 4), letter, fill=255, font=font)
        box = canvas.getbbox()
        if box is None:
            return None
        crops.append(canvas.crop(box))
    if len({(crop.size, crop.tobytes()) for crop in crops}) < len(LETTERS):
        return None
    return crops


def render(glyph, rng: random.Random, side: int = SIDE):
    """One `side x side` rendering of a glyph crop: fitted into a box of 70-90% of the side (aspect kept), rotated by
    up to 10 degrees, shifted by up to 2 pixels."""
    from PIL import Image

    fit = rng.uniform(0.7, 0.9) * side / max(glyph.size)
    size = (max(1, round(glyph.width * fit)), max(1, round(glyph.height * fit)))
    letter = glyph.resize(size, Image.Resampling.LANCZOS).rotate(rng.uniform(-10, 10), Image.Resampling.BICUBIC,
                                                                    expand=True)
    canvas = Image.new("L", (side, side))
    x = (side - letter.width) // 2 + rng.randint(-2, 2)
    y = (side - letter.height) // 2 + rng.randint(-2, 2)
    canvas.paste(letter, (x, y), letter)
    return canvas


def build_splits(fonts: dict[str, list[Path]], test_packages, renderings: int, seed: int):
    """`{split: rows}` and the kept fonts per package; rows are dicts of `image` (PNG bytes), `label`, `font`,
    `package`. A font's renderings are drawn from `(seed, font file name)` alone, so adding a package changes no
    other font's images."""
    splits, kept = {"train": [], "test": []}, {}
    for package, paths in fonts.items():
        split = "test" if package in test_packages else "train"
        for path in paths:
            crops = glyphs(path)
            if crops is None:
                continue
            kept.setdefault(package, []).append(path.name)
            rng = random.Random(f"{seed}/{path.name}")
            for label, glyph in enumerate(crops):
                for _ in range(renderings):
                    buffer = io.BytesIO()
                    render(glyph, rng).save(buffer, format="PNG")
                    splits[split].append({"image": {"bytes": buffer.getvalue(), "path": None}, "label": label,
                                          "font": path.name, "package": package})
    return splits, kept


def write(splits: dict, kept: dict, out: Path, licence_of, seed: int, renderings: int, test_packages) -> None:
    """The parquet files, the card and the preview of `build_splits`'s output."""
    from datasets import ClassLabel, Dataset, Features, Image, Value

    features = Features({"image": Image(), "label": ClassLabel(names=list(LETTERS)), "font": Value("string"),
                         "package": Value("string")})
    (out / "data").mkdir(parents=True, exist_ok=True)
    datasets = {}
    for split, rows in splits.items():
        datasets[split] = Dataset.from_list(rows, features=features)
        datasets[split].to_parquet(str(out / "data" / f"{split}-00000-of-00001.parquet"))
    preview(datasets["test"], out / "preview.png")
    (out / "README.md").write_text(card(datasets, kept, licence_of, seed, renderings, test_packages))


def preview(test, path: Path, per_class: int = 12) -> None:
    """A grid of test images, one row per letter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = test["label"]
    fig, axes = plt.subplots(len(LETTERS), per_class, figsize=(per_class * 0.6, len(LETTERS) * 0.6))
    step = max(1, len(labels) // (len(LETTERS) * per_class))
    for label, row in enumerate(axes):
        indices = [i for i, y in enumerate(labels) if y == label][::step][:per_class]
        for ax, i in zip(row, indices):
            ax.imshow(test[i]["image"], cmap="gray", vmin=0, vmax=255)
        for ax in row:
            ax.axis("off")
    fig.suptitle("font letters, test split (fonts never seen in training)", fontsize=8)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def card(datasets: dict, kept: dict, licence_of, seed: int, renderings: int, test_packages) -> str:
    """The dataset card: how it was made, counts per split and class, and each package's fonts and licences."""
    counts = {split: [d["label"].count(c) for c in range(len(LETTERS))] for split, d in datasets.items()}
    fonts = {split: set(d["font"]) for split, d in datasets.items()}
    lines = [
        "---", "license: other", "task_categories: [image-classification]", "size_categories: [10K<n<100K]",
        "configs:", "- config_name: default", "  data_files:",
        "  - {split: train, path: data/train-00000-of-00001.parquet}",
        "  - {split: test, path: data/test-00000-of-00001.parquet}", "---", "",
        "# Font letters (A-J)", "",
        "The letters A to J rendered from the fonts that Debian packages ship, in the manner of notMNIST: a "
        "classification target for hf-ssdd's benchmarks that is unlike Fashion-MNIST (its source) and leaves "
        "headroom. Made by `benchmarks/font_letters.py` (seed "
        f"{seed}, {renderings} renderings of each letter of each font: 28 x 28 grayscale, white on black, fitted "
        "into 70-90% of the side, rotated by up to 10 degrees, shifted by up to 2 pixels).", "",
        "The test split's fonts come from packages that no training image comes from, so accuracy measures "
        "generalisation to unseen typefaces.", "", "![test images](preview.png)", "",
        "| split | images | fonts | packages | " + " | ".join(LETTERS) + " |", "|---" * (4 + len(LETTERS)) + "|",
    ]
    for split in datasets:
        packages = len({p for p in datasets[split]["package"]})
        lines.append(f"| {split} | {len(datasets[split])} | {len(fonts[split])} | {packages} | "
                     + " | ".join(map(str, counts[split])) + " |")
    lines += ["", "## Fonts and their licences", "",
              "Each image is a rendering of a glyph of the font named in its `font` column, from the Debian package "
              "in its `package` column; the fonts' licences apply. The licences below are all those that each "
              "package's copyright file names (its fonts' and, often GPL, its Debian packaging's).", "",
              "| package | split | fonts kept | licence |", "|---|---|---|---|"]
    for package, names in kept.items():
        split = "test" if package in test_packages else "train"
        lines.append(f"| {package} | {split} | {len(names)} | {licence_of(package)} |")
    return "\n".join(lines) + "\n"


def digest(out: Path) -> str:
    """SHA-256 of the parquet files: equal for two builds from the same fonts and seed."""
    sha = hashlib.sha256()
    for path in sorted((out / "data").glob("*.parquet")):
        sha.update(path.read_bytes())
    return sha.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output_dir", default="benchmarks/targets/font-letters")
    parser.add_argument("--renderings", type=int, default=4, help="renderings of each letter of each font")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--print_packages", action="store_true", help="print the Debian packages it reads, and exit")
    args = parser.parse_args()
    if args.print_packages:
        print(" ".join(PACKAGES))
        return
    splits, kept = build_splits(installed_fonts(), TEST_PACKAGES, args.renderings, args.seed)
    out = Path(args.output_dir)
    write(splits, kept, out, licences, args.seed, args.renderings, TEST_PACKAGES)
    print(f"font letters: {len(splits['train'])} train, {len(splits['test'])} test images from "
          f"{sum(map(len, kept.values()))} fonts -> {out} (sha256 {digest(out)[:16]})")


if __name__ == "__main__":
    main()
