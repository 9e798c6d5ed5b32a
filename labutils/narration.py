"""Sentences computed from a run's numbers, for the notebooks' narration (Markdown strings).

Each function takes the records a notebook has just computed and returns the paragraph that
states them; the notebook displays it with :func:`labutils.show_markdown`. Keeping the grammar
here, tested, keeps the notebooks' cells short and every number in the prose computed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from .data import LETTERS
from .display import describe_gap
from .saving import SEED_REPORT

__all__ = [
    "describe_cnn_conclusion",
    "describe_cnn_families",
    "describe_confusions",
    "describe_same_seconds",
    "describe_split_conclusion",
    "describe_model",
    "describe_transfer_answers",
    "plural",
]


def plural(count: int, noun: str, plural_noun: str | None = None) -> str:
    """``1 error``, ``2 errors``, with the count written with thousands separators."""
    word = noun if count == 1 else (plural_noun or noun + "s")
    return f"{count:,} {word}"


def describe_model(name: str, row: Mapping[str, Any], *, test_images: int) -> str:
    """``name`` reads 0.9990 of the test images right (7 of 7,172 wrong, log-loss 0.0042)."""
    errors = int(row["test_errors"])
    return (
        f"**{name}** reads **{float(row['test_accuracy']):.4f}** of the test images right "
        f"({errors:,} of {test_images:,} wrong, log-loss {float(row['test_log_loss']):.4f})"
    )


def _costs(row: Mapping[str, Any]) -> str:
    parts = []
    for key, text in (
        ("total_weights", "{:,.0f} weights"),
        ("train_seconds", "{:,.0f} s of training"),
        ("inference_images_per_second", "{:,.0f} images/s"),
    ):
        value = row.get(key)
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            parts.append(text.format(float(value)))
    return ", ".join(parts)


def _difference(first: float, second: float) -> str:
    points = 100 * (first - second)
    if abs(points) < 0.005:
        return "the same"
    return f"{abs(points):.2f} points {'above' if points > 0 else 'below'}"


def _pretraining_effect(gain: float) -> str:
    points = 100 * gain
    if abs(points) < 0.005:
        return "pretraining leaves the test accuracy unchanged"
    return f"pretraining {'adds' if points > 0 else 'costs'} {abs(points):.2f} points of test accuracy"


def describe_transfer_answers(
    records: Mapping[str, Mapping[str, Any]],
    comparison: pd.DataFrame,
    *,
    is_real: bool,
    test_images: int,
    epoch_seconds: Mapping[str, float] | None = None,
) -> str:
    """Notebook 04's conclusion: the lab's three questions, answered from this run's records.

    ``records``: notebook 04's models (``regime`` "feature extraction", "fine-tuning" or
    "from scratch", with ``backbone`` and ``pretrained``); ``comparison``: the table over the
    whole lab (:func:`labutils.comparison_table`), indexed by model name with a ``task`` column.
    """
    if not records:
        raise ValueError("no Task 4 models to describe")
    data_words = "On the real data" if is_real else "On the SYNTHETIC STAND-IN (not the real data)"
    paragraphs = []

    # 1. How did transfer learning change the classifier?
    frozen = {name: r for name, r in records.items() if r["regime"] == "feature extraction"}
    tuned = {name: r for name, r in records.items() if r["regime"] == "fine-tuning"}
    answer = ["**How did transfer learning change the classifier?**"]
    if not any(r["pretrained"] for r in records.values()):
        answer.append(
            "**No pretrained weights were available in this run, so this is not transfer learning**: every "
            "backbone started from random weights, and the numbers measure those architectures, not pretraining."
        )
    for name, record in tuned.items():
        control_name = f"{record['backbone']}_from_scratch"
        control = records.get(control_name)
        sentence = (
            f"{describe_model(name, record, test_images=test_images)} after {record['train_seconds']:,.0f} s"
        )
        if not record["pretrained"]:
            sentence += " (from random weights: no pretrained weights were loaded)"
        if control is not None:
            sentence += (
                f"; the same network from random initialisation ({control_name}, batch norm trained, "
                f"{control['train_seconds']:,.0f} s) reads {float(control['test_accuracy']):.4f} "
                f"({int(control['test_errors']):,} wrong, log-loss {float(control['test_log_loss']):.4f}): "
                f"{_pretraining_effect(float(record['test_accuracy']) - float(control['test_accuracy']))}"
            )
        answer.append(sentence + ".")
    if frozen:
        best_frozen = max(frozen, key=lambda n: frozen[n]["test_accuracy"])
        listed = ", ".join(
            f"{n} {frozen[n]['test_accuracy']:.4f}{'' if frozen[n]['pretrained'] else ' (not pretrained)'}"
            for n in sorted(frozen, key=lambda n: -frozen[n]["test_accuracy"])
        )
        reads = frozen[best_frozen].get("head_reads")
        answer.append(
            f"Frozen, with only a new head: {listed}; the best, {best_frozen}"
            f"{f' (its head reads the {reads})' if reads else ''}, is "
            f"{_difference(float(frozen[best_frozen]['test_accuracy']), SEED_REPORT.task4_accuracy)} the seed "
            f"report's frozen VGG16 ({SEED_REPORT.task4_accuracy:.4f})."
        )
    untuned = [
        (backbone, seconds)
        for backbone, seconds in sorted((epoch_seconds or {}).items())
        if not any(r["backbone"] == backbone for r in tuned.values())
    ]
    if untuned:
        listed = "; ".join(f"{backbone} about {seconds:,.0f} s" for backbone, seconds in untuned)
        answer.append(
            f"Not fine-tuned here: one fine-tuning epoch would take, on this machine, {listed} "
            "(timed on a few training steps)."
        )
    paragraphs.append(" ".join(answer))

    # 2. Could we have done without it?
    transfer_rows = comparison[comparison["task"] == "Task 4"]
    pretrained_names = [n for n in transfer_rows.index if records.get(n, {}).get("pretrained")]
    own = comparison[comparison["task"].isin(["Task 2", "Task 3"])]
    if not pretrained_names:
        paragraphs.append(
            "**Could we have done without it?** Not answered: no model of this run started from "
            "pretrained weights."
        )
    elif own.empty:
        paragraphs.append(
            "**Could we have done without it?** Run notebooks 02 and 03 on the same data to answer."
        )
    else:
        best_pretrained = max(pretrained_names, key=lambda n: transfer_rows.test_accuracy[n])
        ours = own[own["task"] == "Task 3"] if (own["task"] == "Task 3").any() else own
        same_images = ours[ours["train_images"] == transfer_rows.train_images[best_pretrained]]
        best_own = (same_images if len(same_images) else ours).test_accuracy.idxmax()
        pretrained_row, own_row = transfer_rows.loc[best_pretrained], own.loc[best_own]
        difference = float(own_row.test_accuracy) - float(pretrained_row.test_accuracy)
        verdict = "Yes" if difference >= 0 else "Not quite" if difference > -0.005 else "No"
        text = (
            f"**Could we have done without it?** {verdict}: {describe_model(best_own, own_row, test_images=test_images)} "
            f"({own_row.task}, trained from scratch; {_costs(own_row)}), "
            f"{_difference(float(own_row.test_accuracy), float(pretrained_row.test_accuracy))} "
            f"the best pretrained model, {best_pretrained} at {float(pretrained_row.test_accuracy):.4f} "
            f"(log-loss {float(pretrained_row.test_log_loss):.4f}; {_costs(pretrained_row)})."
        )
        if len(same_images):
            text += f" Both learned from the same {int(pretrained_row.train_images):,} training images."
        paragraphs.append(text)

    # 3. The best test result of the lab
    best = comparison.test_accuracy.idxmax()
    paragraphs.append(
        f"**Best test result of the whole lab: {float(comparison.test_accuracy[best]):.4f}** "
        f"({plural(int(comparison.test_errors[best]), 'error')} of {test_images:,}) by **{best}** "
        f"({comparison.task[best]})."
    )
    return f"{data_words}:\n\n" + "\n\n".join(paragraphs)


def describe_split_conclusion(
    *,
    real_data: bool,
    train_images: int,
    test_images: int,
    families: int,
    random_median: float,
    test_median: float,
    grouped: Mapping[str, Any],
    split_kind: str,
) -> str:
    """Notebook 01's conclusion: the data, their families, what each split's validation side looks like.

    ``random_median`` and ``test_median``: the median correlation of a random-split validation image
    and of a test image with its nearest training image; ``grouped``: the grouped split's summary.
    """
    return (
        f"The data are {'the real Kaggle files' if real_data else 'the SYNTHETIC STAND-IN, not the real data'}: "
        f"{train_images:,} training and {test_images:,} test images of {len(LETTERS)} letters. "
        f"The training images form only {families:,} families of near-duplicates, so the seed's random "
        f"split puts near-copies on both sides (median nearest-training correlation {random_median:.4f} against "
        f"{test_median:.4f} for the test set). The grouped split holds out {grouped['validation_rows']:,} images "
        f"({grouped['validation_fraction']:.1%}) in {grouped['validation_families']:,} whole families and trains on "
        f"{grouped['train_rows']:,}; the report uses the **{split_kind}** split."
    )


def describe_confusions(letters: pd.DataFrame, y_true, y_predicted, *, shown: int = 3) -> str:
    """'Hardest letters (F1): R 0.912, ... Most frequent confusions (true→predicted): R→U (12), ...'.

    ``letters`` is :func:`~labutils.metrics.per_letter_report` (indexed by letter, with ``f1``);
    ``y_true`` and ``y_predicted`` are class indices of the same images.
    """
    worst = letters.sort_values("f1").head(shown)
    text = (
        "Hardest letters (F1): "
        + ", ".join(f"{letter} {row.f1:.3f}" for letter, row in worst.iterrows())
        + ". "
    )
    pairs = pd.Series(
        [(LETTERS[int(t)], LETTERS[int(p)]) for t, p in zip(y_true, y_predicted) if t != p], dtype=object
    )
    if pairs.empty:
        return text + "There is no confusion at all."
    top = pairs.value_counts().head(shown)
    return (
        text
        + "Most frequent confusions (true→predicted): "
        + ", ".join(f"{t}→{p} ({n})" for (t, p), n in top.items())
        + "."
    )


def describe_cnn_families(
    by_family: pd.DataFrame, families_with_errors: Mapping[str, int], *, test_images: int
) -> str:
    """Notebook 02's sentence on the test families (near-copies of one photograph) its networks get wrong.

    ``by_family``: the final network's errors per test family (:func:`labutils.errors_by_family`);
    ``families_with_errors``: for each of notebook 02's models, how many families it gets at least partly wrong.
    """
    typical = float(by_family["images"].median())
    wrong = by_family[by_family["errors"] > 0]
    text = f"The {test_images:,} test images form {len(by_family)} families (median {typical:.0f} images). "
    if wrong.empty:
        text += "The final network reads all of them right. "
    else:
        mostly_wrong = int((wrong["errors"] > wrong["images"] / 2).sum())
        text += (
            f"The final network's {plural(int(wrong['errors'].sum()), 'error')} fall in {len(wrong)} of them, "
            f"{mostly_wrong} of which it gets mostly wrong (trained on the split's training side: errors in "
            f"{plural(families_with_errors['compact_cnn'], 'family', 'families')}; the reference network: "
            f"{families_with_errors['seed_cnn']}). "
        )
    return text + (
        f"One family of {typical:.0f} images is {100 * typical / test_images:.2f} points of test accuracy: accuracies "
        f"move in such steps, and a test set without errors means all {len(by_family)} photographs read right."
    )


def describe_cnn_conclusion(
    records: Mapping[str, Mapping[str, Any]],
    *,
    real_data: bool,
    recipe: Mapping[str, Any],
    test_images: int,
    random_split: Mapping[str, float],
) -> str:
    """Notebook 02's conclusion, from its ``metrics.json`` records (``seed_cnn``, ``compact_cnn``,
    ``compact_cnn_final``), its recipe (``pooling``, ``head``) and the random-split twin's
    ``val_accuracy`` and ``test_accuracy``."""
    ours, reference, final = records["compact_cnn"], records["seed_cnn"], records["compact_cnn_final"]
    design = "batch normalisation, per-image standardisation"
    design += ", anti-aliased pooling" if recipe["pooling"] == "blur" else ""
    design += " and global average pooling" if recipe["head"] == "average" else ""
    validation = float(ours["val_accuracy_grouped"])
    overstated = 100 * (random_split["val_accuracy"] - random_split["test_accuracy"])
    return (
        f"{'On the real data' if real_data else 'On the SYNTHETIC STAND-IN (not the real data)'}, our "
        f"{ours['total_weights']:,}-weight network with {design}, trained on the training side of the grouped "
        f"split, reaches a test accuracy of {ours['test_accuracy']:.4f} ({ours['test_errors']:,} of {test_images:,} "
        f"wrong) in {ours['train_seconds']:.0f} s. The seed report's {reference['total_weights']:,}-weight network, "
        f"given the same images and seconds, reaches {reference['test_accuracy']:.4f} ({reference['test_errors']:,} "
        f"wrong); the seed report published {SEED_REPORT.task2_accuracy:.4f} after 50 epochs. The grouped validation "
        f"accuracy ({validation:.4f}) is {describe_gap(validation, float(ours['test_accuracy']))}, while the random "
        f"split's validation accuracy ({random_split['val_accuracy']:.4f}) overstates it by {overstated:.1f} points. "
        f"With the recipe fixed, the final network trained on all {final['train_images']:,} training images reaches "
        f"**{final['test_accuracy']:.4f}** ({final['test_errors']:,} wrong, weighted F1 "
        f"{final['test_f1_weighted']:.4f}) in {final['train_seconds']:.0f} s."
    )


def describe_same_seconds(
    seconds: float,
    epochs: int,
    *,
    cut_short: tuple[int, int] | None,
    ours_seconds: float,
    ours_epochs: int,
    further: bool = False,
) -> str:
    """'In 120 s the reference network ran 5 epochs, the last one cut short after 30 of 150 steps (ours: 8
    epochs in 120 s)': the reference trained for our network's seconds (no closing full stop).

    ``cut_short`` is (steps done, steps per epoch) when the time ran out inside the last epoch
    (:class:`~labutils.callbacks.TimeBudget`), else None; ``further`` says "more epochs" (its
    training continued an earlier one).
    """
    text = (
        f"In {seconds:.0f} s the reference network ran {plural(epochs, 'more epoch' if further else 'epoch')}"
    )
    if cut_short is not None:
        done, per_epoch = cut_short
        text += f", the last one cut short after {done} of {per_epoch} steps"
    return text + f" (ours: {plural(ours_epochs, 'epoch')} in {ours_seconds:.0f} s)"
