"""The model cards: a teacher's names a built-in source by its Hub copy; transfer results merge into a learner's
`model-index`, one entry per target and protocol. The stages' own tests check that they save a card."""

from huggingface_hub import ModelCard

from hf_ssdd.data import Normalization
from hf_ssdd.model_cards import add_results, result_name, teacher_card
from hf_ssdd.teacher_config import TeacherTrainConfig
from hf_ssdd.teacher_training import build_encoder


def test_a_teacher_card_names_a_built_in_source_by_its_hub_copy():
    cfg = TeacherTrainConfig(dataset="fashion_mnist", output_dir="teacher")
    stats = dict(num_images=100, resolution=28, channels=1, image_size=32, steps=30, final_loss=1.5, wall_time_s=60.0,
                 num_processes=1, device="cpu")
    encoder = build_encoder(cfg, channels=1, image_size=32)
    card = ModelCard(teacher_card(cfg, Normalization((0.29,), (0.35,)), stats, encoder))

    assert card.data.datasets == ["zalando-datasets/fashion_mnist"]
    assert "on `zalando-datasets/fashion_mnist`" in card.text
    assert "--teacher teacher --dataset fashion_mnist" in card.text and "30 steps" in card.text


def test_transfer_results_merge_into_the_model_index_one_entry_per_target_and_protocol(tmp_path):
    (tmp_path / "README.md").write_text("---\nlibrary_name: transformers\n---\n# A learner\n")
    add_results(tmp_path, [{"target": "digits", "protocol": "linear", "accuracy": 0.812345, "test_split": "test"},
                           {"target": "cifar", "protocol": "finetune", "accuracy": 0.5, "max_train_samples": 100}])
    add_results(tmp_path, [{"target": "digits", "protocol": "linear", "accuracy": 0.9}])

    card = ModelCard.load(tmp_path / "README.md")
    scores = {(r.dataset_name, r.metric_name): r.metric_value for r in card.data.eval_results}
    assert scores == {("digits", "Linear-probe accuracy"): 0.9, ("cifar (100 labels)", "Fine-tuning accuracy"): 0.5}
    assert card.data.model_name == tmp_path.name and not list(tmp_path.glob("*.tmp"))
    assert result_name({"target": "a", "max_train_samples": 5}) == "a (5 labels)"
    assert result_name({"target": "b"}) == "b"
    assert result_name({"target": "c", "max_train_samples": None, "train_fraction": 0.05}) == "c (5% of labels)"
