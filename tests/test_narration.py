"""Computed sentences: every number comes from the records, and the wording follows them."""

from __future__ import annotations

import pandas as pd
import pytest

from labutils.narration import (
    describe_cnn_conclusion,
    describe_cnn_families,
    describe_confusions,
    describe_model,
    describe_same_seconds,
    describe_split_conclusion,
    describe_transfer_answers,
    plural,
)


def record(
    accuracy: float, errors: int, regime: str, pretrained: bool, backbone: str = "efficientnet_lite0", **extra
):
    return {
        "test_accuracy": accuracy,
        "test_errors": errors,
        "test_log_loss": 0.01 + errors / 1000,
        "regime": regime,
        "pretrained": pretrained,
        "backbone": backbone,
        "train_seconds": 100.0 + errors,
        **extra,
    }


def table(records: dict, own: dict | None = None) -> pd.DataFrame:
    rows = [
        {
            "model": name,
            "task": "Task 4",
            "total_weights": 3_400_000,
            "train_images": 19118,
            "inference_images_per_second": 900.0,
            **r,
        }
        for name, r in records.items()
    ]
    for name, r in (own or {}).items():
        rows.append({"model": name, "total_weights": 121_000, "inference_images_per_second": 5000.0, **r})
    return pd.DataFrame(rows).set_index("model")


RECORDS = {
    "efficientnet_lite0_features": record(
        0.9449, 395, "feature extraction", True, head_reads="pooled top features + block5c_add flattened"
    ),
    "vgg16_features": record(0.1200, 6311, "feature extraction", False, backbone="vgg16"),
    "efficientnet_lite0_fine_tuned": record(0.9990, 7, "fine-tuning", True),
    "efficientnet_lite0_from_scratch": record(0.6100, 2797, "from scratch", False),
}
OWN = {
    "compact_cnn_augmented": {
        "task": "Task 3",
        "test_accuracy": 0.9943,
        "test_errors": 41,
        "test_log_loss": 0.02,
        "train_seconds": 300.0,
        "train_images": 19118,
    },
    "compact_cnn_augmented_final": {
        "task": "Task 3",
        "test_accuracy": 1.0,
        "test_errors": 0,
        "test_log_loss": 0.001,
        "train_seconds": 400.0,
        "train_images": 27455,
    },
}


def test_plural_and_one_model():
    assert plural(1, "error") == "1 error" and plural(7172, "error") == "7,172 errors"
    assert plural(2, "family", "families") == "2 families"
    sentence = describe_model(
        "m", {"test_accuracy": 0.99902, "test_errors": 7, "test_log_loss": 0.00421}, test_images=7172
    )
    assert sentence == "**m** reads **0.9990** of the test images right (7 of 7,172 wrong, log-loss 0.0042)"


def test_the_three_answers_state_the_records_numbers():
    text = describe_transfer_answers(
        RECORDS,
        table(RECORDS, OWN),
        is_real=True,
        test_images=7172,
        epoch_seconds={"vgg16": 212.4, "efficientnet_lite0": 90.0},
    )
    assert text.startswith("On the real data:")
    # pretrained against its control, same network
    assert (
        "**efficientnet_lite0_fine_tuned** reads **0.9990**" in text and "reads 0.6100 (2,797 wrong" in text
    )
    assert "pretraining adds 38.90 points of test accuracy" in text
    assert (
        "the best, efficientnet_lite0_features (its head reads the pooled top features + block5c_add flattened), "
        "is 13.76 points above the seed report's frozen VGG16"
    ) in text
    assert "vgg16_features 0.1200 (not pretrained)" in text
    assert (
        "Not fine-tuned here: one fine-tuning epoch would take, on this machine, vgg16 about 212 s (timed"
        in text
    )
    # without it: Task 3's network trained on the same images, compared with the best pretrained model
    assert "**Could we have done without it?** Not quite: **compact_cnn_augmented** reads **0.9943**" in text
    assert "0.47 points below the best pretrained model, efficientnet_lite0_fine_tuned at 0.9990" in text
    assert "Both learned from the same 19,118 training images." in text
    assert (
        "**Best test result of the whole lab: 1.0000** (0 errors of 7,172) by **compact_cnn_augmented_final** (Task 3)."
        in text
    )


def test_the_verdicts_follow_the_numbers():
    better = {**OWN, "compact_cnn_augmented": {**OWN["compact_cnn_augmented"], "test_accuracy": 0.9995}}
    assert "**Could we have done without it?** Yes:" in describe_transfer_answers(
        RECORDS, table(RECORDS, better), is_real=True, test_images=7172
    )
    worse = {**OWN, "compact_cnn_augmented": {**OWN["compact_cnn_augmented"], "test_accuracy": 0.95}}
    text = describe_transfer_answers(RECORDS, table(RECORDS, worse), is_real=True, test_images=7172)
    assert "**Could we have done without it?** No:" in text and "4.90 points below" in text
    control_wins = {**RECORDS, "efficientnet_lite0_from_scratch": record(0.9995, 4, "from scratch", False)}
    assert "pretraining costs 0.05 points" in describe_transfer_answers(
        control_wins, table(control_wins, OWN), is_real=True, test_images=7172
    )


def test_runs_without_pretrained_weights_or_earlier_tasks_say_so():
    unpretrained = {name: {**r, "pretrained": False} for name, r in RECORDS.items()}
    text = describe_transfer_answers(unpretrained, table(unpretrained, OWN), is_real=False, test_images=480)
    assert text.startswith("On the SYNTHETIC STAND-IN (not the real data):")
    assert "**No pretrained weights were available in this run, so this is not transfer learning**" in text
    assert "(from random weights: no pretrained weights were loaded)" in text
    assert "**Could we have done without it?** Not answered" in text
    alone = describe_transfer_answers(RECORDS, table(RECORDS), is_real=True, test_images=7172)
    assert "Run notebooks 02 and 03 on the same data to answer." in alone
    with pytest.raises(ValueError, match="no Task 4 models"):
        describe_transfer_answers({}, table(RECORDS), is_real=True, test_images=1)


def _neighbours(own: list[float], nearest_letters: list[str]) -> pd.DataFrame:
    """Test families #0… of letter A, with their own letter's best training match and the nearest's letter."""
    return pd.DataFrame(
        {
            "letter": ["A"] * len(own),
            "nearest_letter": nearest_letters,
            "nearest_similarity": [max(value, 0.9) for value in own],
            "own_letter_similarity": own,
        }
    )


def test_the_same_seconds_sentence_says_whether_the_last_epoch_was_cut_short():
    assert describe_same_seconds(120.4, 5, cut_short=(30, 150), ours_seconds=119.6, ours_epochs=8) == (
        "In 120 s the reference network ran 5 epochs, the last one cut short after 30 of 150 steps "
        "(ours: 8 epochs in 120 s)"
    )
    assert describe_same_seconds(60, 1, cut_short=None, ours_seconds=61, ours_epochs=1, further=True) == (
        "In 60 s the reference network ran 1 more epoch (ours: 1 epoch in 61 s)"
    )


def test_the_confusions_sentence_names_the_hardest_letters_and_the_commonest_mistakes():
    import numpy as np

    from labutils.metrics import per_letter_report

    y_true = np.array([0, 0, 0, 1, 1, 2, 2, 2] + list(range(3, 24)))
    y_predicted = np.array([0, 1, 1, 1, 1, 2, 2, 0] + list(range(3, 24)))
    text = describe_confusions(per_letter_report(y_true, y_predicted), y_true, y_predicted)
    assert text.startswith("Hardest letters (F1): A 0.400, B 0.667, C 0.800. ")
    assert text.endswith("Most frequent confusions (true→predicted): A→B (2), C→A (1).")
    right = describe_confusions(per_letter_report(y_true, y_true), y_true, y_true)
    assert right.endswith("There is no confusion at all.")


def test_the_cnn_families_sentence_counts_the_families_and_their_weight_in_accuracy():
    by_family = pd.DataFrame({"images": [20, 20, 10, 30], "errors": [15, 1, 0, 0]})
    counts = {"compact_cnn": 1, "seed_cnn": 3}
    text = describe_cnn_families(by_family, counts, test_images=80)
    assert text.startswith("The 80 test images form 4 families (median 20 images). ")
    assert "The final network's 16 errors fall in 2 of them, 1 of which it gets mostly wrong" in text
    assert "errors in 1 family; the reference network: 3)" in text
    assert "One family of 20 images is 25.00 points of test accuracy" in text
    clean = describe_cnn_families(by_family.assign(errors=0), counts, test_images=80)
    assert "The final network reads all of them right. One family" in clean


def test_the_cnn_conclusion_states_the_records_numbers():
    records = {
        "compact_cnn": {
            "total_weights": 37480,
            "test_accuracy": 0.9502,
            "test_errors": 357,
            "train_seconds": 99.6,
            "val_accuracy_grouped": 0.9462,
        },
        "seed_cnn": {"total_weights": 139608, "test_accuracy": 0.9095, "test_errors": 649},
        "compact_cnn_final": {
            "train_images": 27455,
            "test_accuracy": 1.0,
            "test_errors": 0,
            "test_f1_weighted": 1.0,
            "train_seconds": 140.2,
        },
    }
    text = describe_cnn_conclusion(
        records,
        real_data=True,
        recipe={"pooling": "blur", "head": "average"},
        test_images=7172,
        random_split={"val_accuracy": 1.0, "test_accuracy": 0.9615},
    )
    assert text.startswith(
        "On the real data, our 37,480-weight network with batch normalisation, per-image standardisation, "
        "anti-aliased pooling and global average pooling, trained on the training side"
    )
    assert "reaches a test accuracy of 0.9502 (357 of 7,172 wrong) in 100 s." in text
    assert "139,608-weight network, given the same images and seconds, reaches 0.9095 (649 wrong)" in text
    assert "published 0.9714 after 50 epochs" in text and "overstates it by 3.8 points" in text
    assert text.endswith(
        "all 27,455 training images reaches **1.0000** (0 wrong, weighted F1 1.0000) in 140 s."
    )
    plain = describe_cnn_conclusion(
        records,
        real_data=False,
        recipe={"pooling": "max", "head": "flatten"},
        test_images=480,
        random_split={"val_accuracy": 1.0, "test_accuracy": 0.9},
    )
    assert plain.startswith(
        "On the SYNTHETIC STAND-IN (not the real data), our 37,480-weight network with batch "
        "normalisation, per-image standardisation, trained"
    )


def test_the_split_conclusion_states_the_datas_numbers():
    grouped = {
        "validation_rows": 8337,
        "validation_fraction": 0.3037,
        "validation_families": 376,
        "train_rows": 19118,
    }
    text = describe_split_conclusion(
        real_data=True,
        train_images=27455,
        test_images=7172,
        families=1229,
        random_median=0.99991,
        test_median=0.852,
        grouped=grouped,
        split_kind="grouped",
    )
    assert text == (
        "The data are the real Kaggle files: 27,455 training and 7,172 test images of 24 letters. The training "
        "images form only 1,229 families of near-duplicates, so the seed's random split puts near-copies on both "
        "sides (median nearest-training correlation 0.9999 against 0.8520 for the test set). The grouped split "
        "holds out 8,337 images (30.4%) in 376 whole families and trains on 19,118; the report uses the "
        "**grouped** split."
    )
    assert "the SYNTHETIC STAND-IN, not the real data" in describe_split_conclusion(
        real_data=False,
        train_images=1,
        test_images=1,
        families=1,
        random_median=1,
        test_median=1,
        grouped=grouped,
        split_kind="random",
    )
