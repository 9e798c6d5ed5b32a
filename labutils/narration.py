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
from .metrics import describe_gap
from .results import SEED_REPORT

__all__ = [
    "describe_augmentation_conclusion",
    "describe_cnn_conclusion",
    "describe_cnn_families",
    "describe_confusions",
    "describe_missed_families",
    "describe_robustness_gains",
    "describe_same_seconds",
    "describe_split_conclusion",
    "describe_model",
    "describe_test_families",
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


def describe_test_families(by_family: pd.DataFrame, families_with_errors: Mapping[str, int]) -> str:
    """Notebook 03's sentence on the test families (near-copies of one photograph) its networks get wrong.

    ``by_family``: the final augmented network's errors per test family
    (:func:`labutils.errors_by_family`: ``letter``, ``images``, ``errors``); ``families_with_errors``:
    for each of notebook 03's models, how many test families it gets at least partly wrong.
    """
    counts = families_with_errors
    text = (
        f"Of the {len(by_family)} test families, our final network got {counts['compact_cnn_final (Task 2)']} "
        f"at least partly wrong after Task 2 and **{counts['compact_cnn_augmented_final']}** after augmentation "
        f"(trained on the split's training side: {counts['compact_cnn (Task 2)']} → "
        f"{counts['compact_cnn_augmented']}; the reference network: {counts['seed_cnn (Task 2)']} → "
        f"{counts['seed_cnn_augmented']}). "
    )
    wrong = by_family[by_family["errors"] > 0]
    if wrong.empty:
        return text + "It reads every test photograph right."
    letters = wrong["letter"].value_counts()
    listed = ", ".join(
        f"{letter} ({plural(int(count), 'family', 'families')})" for letter, count in letters.head(5).items()
    )
    more = f" and {len(letters) - 5} more letters" if len(letters) > 5 else ""
    mostly_wrong = wrong["errors"] > wrong["images"] / 2  # a photograph misread as a whole
    share = wrong.loc[mostly_wrong, "errors"].sum() / wrong["errors"].sum()
    return text + (
        f"The final augmented network's wrong {'families are' if len(wrong) > 1 else 'family is'} of the "
        f"{'letters' if len(letters) > 1 else 'letter'} {listed}{more}; {share:.0%} of its errors lie in families "
        "it gets mostly wrong (a photograph misread as a whole), the rest in families it mostly reads right."
    )


def describe_missed_families(neighbours: pd.DataFrame, missed_before: pd.Index, missed_now: pd.Index) -> str:
    """Where the test families a network misses stand among all test families, in words.

    ``neighbours``: one row per test family (``family_neighbours``: its letter, the nearest
    training image's letter and correlation, the nearest of its own letter's). ``missed_before``
    and ``missed_now``: the families a network got wrong before and after a change (Task 3's
    augmentation). Says how many families augmentation set right and newly missed, whether the
    missed ones have their nearest training image in another letter, and whether they are among
    the test photographs least like any training photograph of their letter (then reading them
    takes generalising past every example) or not (then the misses are the network's).
    """
    own_nearest = neighbours["nearest_letter"] == neighbours["letter"]
    text = (
        f"Across all {len(neighbours)} test families, {own_nearest.mean():.0%} have their nearest training image in "
        "their own letter, and the median family has a training image of its letter at r = "
        f"{neighbours['own_letter_similarity'].median():.2f}. "
    )
    set_right, newly_missed = missed_before.difference(missed_now), missed_now.difference(missed_before)
    if len(set_right):
        text += (
            f"Augmentation set right {len(set_right)} of the {len(missed_before)} families our final network missed "
            "after Task 2 (their own letter's nearest training image: median r = "
            f"{neighbours.loc[set_right, 'own_letter_similarity'].median():.2f})"
            + (f" and newly missed {len(newly_missed)}" if len(newly_missed) else "")
            + ". "
        )
    missed = neighbours.loc[missed_now]
    if not len(missed):
        return text
    return text + _missed_families_standing(neighbours, missed)


def _missed_families_standing(neighbours: pd.DataFrame, missed: pd.DataFrame) -> str:
    elsewhere = missed[missed["nearest_letter"] != missed["letter"]]
    # the share of all test families whose own letter's best training match is weaker than each missed family's
    ranks = missed["own_letter_similarity"].map(
        lambda value: (neighbours["own_letter_similarity"] < value).mean()
    )
    one = len(missed) == 1
    it, its = ("it", "its") if one else ("them", "their")
    if one:
        text = (
            f"The one family the final network gets wrong {'has' if len(elsewhere) else 'does not have'} its "
            "nearest training image in another letter"
        )
    else:
        text = (
            f"Of the {len(missed)} families the final network gets wrong, {len(elsewhere)} "
            f"{'has its' if len(elsewhere) == 1 else 'have their'} nearest training image in another letter"
        )
    if len(elsewhere):
        text += (
            " ("
            + "; ".join(
                f"#{family} ({row.letter}): the nearest is {row.nearest_letter} at {row.nearest_similarity:.2f}, "
                f"the nearest {row.letter} at {row.own_letter_similarity:.2f}"
                for family, row in elsewhere.head(4).iterrows()
            )
            + ")"
        )
    text += f"; {its} best match in {its} own letter is weaker than that of {1 - ranks.median():.0%} of all test families"
    text += ". " if one else " (median over the missed families). "
    if ranks.median() < 0.25:
        return text + (
            f"{'It is' if one else 'These are'} among the test photographs least like any training photograph of "
            f"{its} letter: reading {it} right takes generalising past every example the network saw, and whether a "
            f"run gets {it} decides whether it reaches zero errors."
        )
    return text + (
        f"{'It is' if one else 'They are'} not unusually far from {its} letter's training photographs: the "
        f"{'miss is' if one else 'misses are'} the network's, not the data's."
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


def describe_robustness_gains(
    mean_accuracy: pd.DataFrame, *, before: str, after: str, imitated: tuple[str, ...] | list[str]
) -> str:
    """What augmentation changed under each perturbation, from the mean accuracies over its strengths.

    ``mean_accuracy`` has one row per perturbation and the columns ``before`` and ``after`` (the
    network without and with augmentation); ``imitated`` are the perturbations of a kind the
    augmentation imitates, where its gain should show.
    """
    missing = [name for name in (before, after) if name not in mean_accuracy.columns]
    if missing:
        raise ValueError(
            f"mean_accuracy has no column {missing[0]!r} (its columns: {list(mean_accuracy.columns)})"
        )
    gains = (mean_accuracy[after] - mean_accuracy[before]).dropna()
    if gains.empty:
        raise ValueError("mean_accuracy holds no perturbation scored for both networks")

    def change(name: str) -> str:
        return f"**{name}** ({mean_accuracy.loc[name, before]:.3f} → {mean_accuracy.loc[name, after]:.3f})"

    helped, hurt = gains[gains > 0].sort_values(ascending=False), gains[gains < 0].sort_values()
    text = (
        "Averaged over the perturbed strengths, augmentation changes our final network's accuracy by "
        f"{gains.mean():+.3f} on average"
    )
    text += (
        f"; it helps most under {change(helped.index[0])}" if len(helped) else "; it helps under none of them"
    )
    if len(helped) > 1 and hurt.empty:
        text += f", least under {change(helped.index[-1])}"
    if len(hurt):
        text += f"; it *lowers* accuracy under {', '.join(change(name) for name in hurt.index)}"
    kinds = [name for name in gains.index if name in imitated]
    others = [name for name in gains.index if name not in imitated]
    text += (
        f". Perturbations of a kind the augmentation imitated ({', '.join(kinds) or 'none'}) are where the gain "
        f"should show"
    )
    return text + (f"; the others ({', '.join(others)}) test how far it generalises." if others else ".")


def describe_augmentation_conclusion(
    *,
    real_data: bool,
    split_run: Mapping[str, float],
    reference_accuracy: float,
    published_accuracy: float,
    final_run: Mapping[str, float],
    test_images: int,
    test_families: int,
    families_with_errors: int,
    families_nearest_elsewhere: int,
    mean_gain: float,
    largest_gain: str,
) -> str:
    """Task 3's conclusion: what augmentation did to the split-trained and the final network, in one paragraph.

    ``split_run``: ``epochs``, ``seconds``, ``before`` and ``after`` (test accuracy), ``val_accuracy``
    of the network trained further on the split's training side. ``final_run``: ``images``,
    ``epochs``, ``seconds``, ``accuracy`` and ``errors`` of the final network.
    ``families_nearest_elsewhere``: of the test families the final network misses, those whose
    nearest training image shows another letter. ``mean_gain`` and ``largest_gain``: the mean
    accuracy augmentation adds under perturbations, and the perturbation where it adds most.
    """
    from .metrics import describe_gap

    data = "On the real data" if real_data else "On the SYNTHETIC STAND-IN (not the real data)"
    text = (
        f"{data}, {split_run['epochs']:.0f} further epochs on augmented batches ({split_run['seconds']:.0f} s) take "
        f"our network, trained on the split's training side, from {split_run['before']:.4f} to "
        f"{split_run['after']:.4f} test accuracy, with a grouped validation accuracy of "
        f"{split_run['val_accuracy']:.4f}, {describe_gap(split_run['val_accuracy'], split_run['after'])}; the "
        f"reference network, trained with its own augmentation for the same time, reaches {reference_accuracy:.4f} "
        f"(the seed report published {published_accuracy:.4f} after 50 more epochs). The same recipe on all "
        f"{final_run['images']:,.0f} training images ({final_run['epochs']:.0f} augmented epochs, "
        f"{final_run['seconds']:.0f} s) gives our final network **{final_run['accuracy']:.4f}** "
        f"({final_run['errors']:.0f} of {test_images:,} wrong, in {families_with_errors} of the {test_families} "
        "test families"
    )
    if families_nearest_elsewhere:
        one = families_nearest_elsewhere == 1
        text += (
            "; it looks"
            if families_with_errors == 1
            else f"; {families_nearest_elsewhere} of them {'looks' if one else 'look'}"
        )
        text += f" more like a training photograph of another letter than like any of {'its' if one else 'their'} own"
    return text + (
        f"). Under perturbations, augmentation keeps {mean_gain:+.3f} more accuracy on average, most under "
        f"{largest_gain}."
    )
