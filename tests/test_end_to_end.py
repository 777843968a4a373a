"""The README's main job, shortened, on real Fashion-MNIST: teacher, KRR-ST, pre-training, transfer (`-m slow`)."""

import json

import pytest

from hf_ssdd.data import FASHION_MNIST_DIR

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not FASHION_MNIST_DIR.exists(), reason="needs Debian's dataset-fashion-mnist"),
]


def test_teacher_then_distillation_on_fashion_mnist(tmp_path):
    import datasets

    from hf_ssdd.checkpoint import list_checkpoints, load_checkpoint
    from hf_ssdd.cli import main
    from hf_ssdd.distilled_set import DistilledSet

    main(["train-teacher", "--config", "recipes/configs/fashion_mnist_teacher.yaml", "--max_steps", "60",
          "--output_dir", str(tmp_path / "teacher")])
    main(["distill", "--config", "recipes/configs/fashion_mnist.yaml", "--teacher", str(tmp_path / "teacher"),
          "--max_steps", "150", "--pool_steps", "20", "--output_dir", str(tmp_path / "distilled"),
          "--report_to", "none"])

    distilled = DistilledSet.load(str(tmp_path / "distilled"))
    assert distilled.pixel_values.shape == (100, 1, 28, 28)
    assert distilled.targets.shape == (100, 128)
    history = load_checkpoint(list_checkpoints(tmp_path / "distilled")[-1])["history"]
    assert len(history) == 150
    assert sum(history[-20:]) < 0.9 * sum(history[:20]), "the outer loss goes down on real data"
    rows = datasets.load_dataset(str(tmp_path / "distilled"), split="train", cache_dir=str(tmp_path / "cache"))
    assert rows[0]["image"].size == (28, 28)

    main(["pretrain", "--distilled", str(tmp_path / "distilled"), "--num_epochs", "100",
          "--output_dir", str(tmp_path / "pretrained")])
    main(["transfer", "--pretrained", str(tmp_path / "pretrained"), "--target", "fashion_mnist", "--protocol", "linear",
          "--max_train_samples", "100", "--output_dir", str(tmp_path / "transfer")])
    result = json.loads((tmp_path / "transfer" / "results.json").read_text())
    assert result["num_test"] == 10_000 and result["accuracy"] > 0.5, "far above chance (0.1) with 100 labels"
