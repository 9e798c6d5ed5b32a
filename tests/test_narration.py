"""Computed sentences: every number comes from the records, and the wording follows them."""

from __future__ import annotations

import pandas as pd
import pytest

from labutils.narration import (
    describe_augmentation_conclusion,
    describe_cnn_conclusion,
    describe_cnn_families,
    describe_confusions,
    describe_missed_families,
    describe_model,
    describe_robustness_gains,
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


def test_the_test_families_sentence_follows_the_families():
    from labutils.narration import describe_test_families

    counts = {
        "compact_cnn_final (Task 2)": 3,
        "compact_cnn_augmented_final": 2,
        "compact_cnn (Task 2)": 9,
        "compact_cnn_augmented": 7,
        "seed_cnn (Task 2)": 30,
        "seed_cnn_augmented": 12,
    }
    by_family = pd.DataFrame(
        {"letter": ["V", "V", "A", "B"], "images": [20, 10, 12, 8], "errors": [15, 1, 0, 0]}
    )
    text = describe_test_families(by_family, counts)
    assert text.startswith(
        "Of the 4 test families, our final network got 3 at least partly wrong after Task 2 and **2** after"
    )
    assert "(trained on the split's training side: 9 → 7; the reference network: 30 → 12)." in text
    # 15 of the 16 errors lie in the family read mostly wrong
    assert (
        "wrong families are of the letter V (2 families); 94% of its errors lie in families it gets mostly wrong"
        in text
    )
    one = by_family.assign(errors=[0, 1, 0, 0])
    assert "wrong family is of the letter V (1 family); 0% of its errors" in describe_test_families(
        one, counts
    )
    assert describe_test_families(by_family.assign(errors=0), counts).endswith(
        "It reads every test photograph right."
    )


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


def test_missed_families_are_placed_among_all_test_families_in_words():
    neighbours = _neighbours([0.5, 0.95, 0.96, 0.97, 0.98, 0.99, 0.99, 0.99], ["E"] + ["A"] * 7)
    # one family missed, and the one least like its letter: reading it takes generalising
    text = describe_missed_families(neighbours, pd.Index([0, 3]), pd.Index([0]))
    assert text.startswith(
        "Across all 8 test families, 88% have their nearest training image in their own letter, and the median "
        "family has a training image of its letter at r = 0.97. "
    )
    assert "Augmentation set right 1 of the 2 families our final network missed after Task 2 (" in text
    assert "median r = 0.97)." in text and "newly missed" not in text
    assert (
        "The one family the final network gets wrong has its nearest training image in another letter (#0 (A): "
        in text
    )
    assert "the nearest is E at 0.90, the nearest A at 0.50)" in text
    assert "; its best match in its own letter is weaker than that of 100% of all test families. " in text
    assert text.endswith(
        "It is among the test photographs least like any training photograph of its letter: reading "
        "it right takes generalising past every example the network saw, and whether a run gets it "
        "decides whether it reaches zero errors."
    )
    # two ordinary families missed, one of them new: the misses are the network's
    text = describe_missed_families(neighbours, pd.Index([0, 4]), pd.Index([4, 5]))
    assert "set right 1 of the 2 families" in text and "and newly missed 1. " in text
    assert (
        "Of the 2 families the final network gets wrong, 0 have their nearest training image in another letter;"
        in text
    )
    assert "their best match in their own letter" in text and "(median over the missed families). " in text
    assert text.endswith(
        "They are not unusually far from their letter's training photographs: the misses are the "
        "network's, not the data's."
    )
    # nothing missed: the overview alone
    assert describe_missed_families(neighbours, pd.Index([]), pd.Index([])).endswith("at r = 0.97. ")


def test_the_task3_conclusion_says_what_augmentation_did_with_the_run_s_numbers():
    figures = dict(
        real_data=True,
        split_run={"epochs": 12, "seconds": 301.4, "before": 0.994, "after": 0.9943, "val_accuracy": 0.9879},
        reference_accuracy=0.9799,
        published_accuracy=0.9964,
        final_run={"images": 27455, "epochs": 12, "seconds": 532.0, "accuracy": 0.9974, "errors": 19},
        test_images=7172,
        test_families=338,
        families_with_errors=1,
        families_nearest_elsewhere=1,
        mean_gain=0.2,
        largest_gain="noise",
    )
    text = describe_augmentation_conclusion(**figures)
    assert text.startswith(
        "On the real data, 12 further epochs on augmented batches (301 s) take our network, trained on the split's "
        "training side, from 0.9940 to 0.9943 test accuracy, with a grouped validation accuracy of 0.9879, "
    )
    assert "reaches 0.9799 (the seed report published 0.9964 after 50 more epochs)" in text
    assert (
        "The same recipe on all 27,455 training images (12 augmented epochs, 532 s) gives our final network "
        "**0.9974** (19 of 7,172 wrong, in 1 of the 338 test families; it looks more like a training photograph "
        "of another letter than like any of its own). Under perturbations, augmentation keeps +0.200 more "
        "accuracy on average, most under noise."
    ) in text
    several = describe_augmentation_conclusion(
        **{**figures, "families_with_errors": 3, "families_nearest_elsewhere": 2}
    )
    assert (
        "in 3 of the 338 test families; 2 of them look more like a training photograph of another letter "
        in several
    )
    assert "than like any of their own)." in several
    none = describe_augmentation_conclusion(
        **{**figures, "real_data": False, "families_with_errors": 0, "families_nearest_elsewhere": 0}
    )
    assert none.startswith("On the SYNTHETIC STAND-IN (not the real data), ")
    assert "in 0 of the 338 test families). Under perturbations" in none


def test_the_robustness_gains_sentence_follows_the_mean_accuracies():
    table = pd.DataFrame(
        {"before": [0.70, 0.44, 0.98, 0.90], "after": [0.95, 0.97, 0.97, 0.90]},
        index=["shift", "noise", "rotation", "scale"],
    )
    text = describe_robustness_gains(table, before="before", after="after", imitated=["shift", "noise"])
    assert text.startswith(
        "Averaged over the perturbed strengths, augmentation changes our final network's accuracy by +0.193"
    )
    assert "it helps most under **noise** (0.440 → 0.970)" in text
    assert "; it *lowers* accuracy under **rotation** (0.980 → 0.970)" in text and "least under" not in text
    assert (
        "imitated (shift, noise) are where the gain should show; the others (rotation, scale) test how far"
        in text
    )
    # nothing lowered: the smallest gain is named too; nothing imitated: said so
    better = table.assign(after=[0.95, 0.97, 0.99, 0.93])
    text = describe_robustness_gains(better, before="before", after="after", imitated=())
    assert "least under **rotation** (0.980 → 0.990)" in text and "imitated (none)" in text
    worse = table.assign(after=table["before"] - 0.01)
    assert "it helps under none of them" in describe_robustness_gains(
        worse, before="before", after="after", imitated=()
    )
    with pytest.raises(ValueError, match="no column 'final'"):
        describe_robustness_gains(table, before="before", after="final", imitated=())


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
