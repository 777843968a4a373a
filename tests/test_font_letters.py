"""benchmarks/font_letters.py: the letters target is ten classes rendered from every font that has them, its test
fonts never seen in training, the same bytes from the same fonts and seed, and readable by `load_dataset`."""

from pathlib import Path

import matplotlib
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
MATPLOTLIB_FONTS = Path(matplotlib.get_data_path()) / "fonts" / "ttf"  # what a PyPI package ships: DejaVu, STIX, cm*


@pytest.fixture
def font_letters(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import font_letters

    return font_letters


@pytest.fixture
def fonts():
    """Two pseudo-packages of matplotlib's fonts: DejaVu faces (train) and STIX faces (test), plus a symbol font
    without Latin capitals, which must be left out."""
    dejavu = sorted(MATPLOTLIB_FONTS.glob("DejaVuSans*.ttf"))[:3]
    stix = sorted(MATPLOTLIB_FONTS.glob("STIXGeneral*.ttf"))[:2]
    return {"dejavu": dejavu + [MATPLOTLIB_FONTS / "STIXSizOneSymReg.ttf"], "stix": stix}


def test_every_font_with_the_ten_letters_gives_each_class_its_renderings(font_letters, fonts, tmp_path):
    splits, kept = font_letters.build_splits(fonts, test_packages={"stix"}, renderings=3, seed=0)
    assert "STIXSizOneSymReg.ttf" not in kept["dejavu"] and len(kept["dejavu"]) == 3 and len(kept["stix"]) == 2
    assert len(splits["train"]) == 3 * 10 * 3 and len(splits["test"]) == 2 * 10 * 3
    assert {r["font"] for r in splits["train"]}.isdisjoint({r["font"] for r in splits["test"]})
    images = [r["image"]["bytes"] for r in splits["train"]]
    assert len(set(images)) == len(images)  # jittered: no rendering twice


def test_a_build_is_a_dataset_with_a_card_and_the_same_bytes_each_time(font_letters, fonts, tmp_path):
    from datasets import load_dataset

    for out in (tmp_path / "a", tmp_path / "b"):
        splits, kept = font_letters.build_splits(fonts, {"stix"}, renderings=2, seed=1)
        font_letters.write(splits, kept, out, lambda package: f"licence of {package}", 1, 2, {"stix"})
    assert font_letters.digest(tmp_path / "a") == font_letters.digest(tmp_path / "b")
    data = load_dataset(str(tmp_path / "a"))
    assert data["train"].features["label"].names == list("ABCDEFGHIJ") and len(data["test"]) == 40
    assert data["train"][0]["image"].size == (28, 28) and data["train"][0]["image"].mode == "L"
    card = (tmp_path / "a" / "README.md").read_text()
    assert "| stix | test | 2 | licence of stix |" in card and "| train | 60 | 3 | 1 |" in card
    assert (tmp_path / "a" / "preview.png").stat().st_size > 0


def test_the_committed_letters_are_what_the_script_says():
    card = (BENCHMARKS / "targets" / "font-letters" / "README.md").read_text()
    assert "| train | 16200 | 405 | 40 |" in card and "| test | 4280 | 107 | 10 |" in card
