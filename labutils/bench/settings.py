"""What the benchmark trains and the targets it checks: contenders, settings (recipes), constants."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from ..recipes import ReferenceRecipe, Task2Recipe, Task3Recipe, TransferRecipe
from ..saving import SEED_REPORT
from ..split import FAMILY_THRESHOLD, SPLIT_SEED, VALIDATION_FRACTION

Recipe = TypeVar("Recipe")

#: The seed report's published test accuracy of each role's task.
PUBLISHED = {
    "task2": SEED_REPORT.task2_accuracy,
    "task3": SEED_REPORT.task3_accuracy,
    "transfer": SEED_REPORT.task4_accuracy,
}
#: What the contenders train on (see :class:`BenchSettings`).
TRAIN_ROWS = ("all", "split")
#: The split every job makes (the grouped split of the notebooks, with the package's settings), as
#: results.json records it: a split run pairs only with runs of the same split.
BENCH_SPLIT: dict[str, Any] = {
    "kind": "grouped",
    "validation_fraction": VALIDATION_FRACTION,
    "seed": SPLIT_SEED,
    "family_threshold": FAMILY_THRESHOLD,
}
#: The accuracy each role's ``seconds_to_reference_final`` is measured against.
REFERENCE_FINAL = {
    "reference": SEED_REPORT.task3_accuracy,
    "task2": SEED_REPORT.task2_accuracy,
    "task3": SEED_REPORT.task3_accuracy,
    "transfer": SEED_REPORT.task3_accuracy,
    "transfer_control": SEED_REPORT.task3_accuracy,
}
#: The contenders, in the order they run and are listed.
CONTENDERS: tuple[str, ...] = tuple(REFERENCE_FINAL)
#: The benchmark's targets for the Task 3 model (2 CPU cores, real data): at most this share of the
#: full reference recipe's training seconds to reach its published Task 3 accuracy, and this many
#: images per second at batch 512.
TARGET_SHARE_OF_REFERENCE, TARGET_INFERENCE_BATCH512 = 0.1, 5000.0
#: The benchmark's targets for the Task 2 model: this test accuracy with every seed and, trained on the
#: grouped split's training side, a grouped validation accuracy within this many points of it.
TARGET_TASK2_ACCURACY, TARGET_TASK2_GAP_POINTS = 0.999, 1.5
#: The Task 3 model's robustness targets: the least test accuracy, with every seed, under a
#: perturbation (kind, strength as results.json writes it) at a strength the benchmark scores
#: (``perturb.TARGET_STRENGTHS``), and the one least accuracy for every other perturbation there (each
#: at its grid's middle strength).
ROBUSTNESS_TARGETS: dict[tuple[str, str], float] = {
    ("noise", "0.05"): 0.99,
    ("noise", "0.1"): 0.95,
    ("blur", "1"): 0.99,
    ("mixed", "1"): 0.97,
}
ROBUSTNESS_TARGET_OTHERS = 0.95
#: How many points the grouped validation's robustness figures may lie from the test's, per seed and strength.
TARGET_VALIDATION_ROBUSTNESS_POINTS = 3.0
#: How many of a contender's missed test families (most errors first) results.json describes per seed.
MISSED_FAMILIES_LISTED = 5
#: Seeded test images whose Grad-CAM maps are scored (the deletion test and the mild camera's stability), and
#: the Task 3 model's faithfulness target: deleting its maps' top 15 % of pixels costs at least this much
#: more accuracy than deleting 15 % at random, with every seed (the notebooks' ``FAITHFUL_MARGIN``).
EXPLANATION_IMAGES, TARGET_FAITHFUL_MARGIN = 1000, 0.05
#: The Task 3 model's Sign-MNIST-C targets with every seed: the mean at severities 1-3 over the held-out
#: types and over every type, and the worst type at severity 3.
CORRUPTION_TARGETS = {"held_out_mean_1_3": 0.95, "corruption_mean_1_3": 0.97, "corruption_worst_3": 0.90}
#: Test images answered one per call for the batch-1 inference figure, and how (results.json's ``batch1_inference``).
BATCH1_IMAGES = 200
BATCH1_METHOD = (
    f"{BATCH1_IMAGES} test images, one per call of the compiled predict function "
    "(`predict_on_batch`, after a warm-up call)"
)


@dataclass(frozen=True)
class BenchSettings:
    """What each contender trains: the recipes the notebooks train with, and which rows.

    The defaults are the full benchmark, the recipes' own defaults (notebooks 02, 03 and 04 build the
    same recipes from the same values). ``train_rows``: "all" trains on the training and validation
    rows together (the report's final fit), "split" on the grouped split's training side only;
    ``train_limit`` caps the training rows (quick runs). ``corruption_images``: the seeded test images
    (and grouped-validation images, the named types only) each network is scored on under Sign-MNIST-C.
    """

    reference: ReferenceRecipe = ReferenceRecipe()
    task2: Task2Recipe = Task2Recipe()
    task3: Task3Recipe = Task3Recipe()
    transfer: TransferRecipe = TransferRecipe()
    train_rows: str = "all"
    train_limit: int | None = None
    corruption_images: int = 1000

    def __post_init__(self) -> None:
        if self.train_rows not in TRAIN_ROWS:
            raise ValueError(f"train_rows must be one of {', '.join(TRAIN_ROWS)}, got {self.train_rows!r}")
        limit = self.train_limit
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ValueError(f"train_limit must be a number of rows >= 1 or None, got {limit!r}")
        count = self.corruption_images
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"corruption_images must be a number of images >= 1, got {count!r}")
        for name, kind in (
            ("reference", ReferenceRecipe),
            ("task2", Task2Recipe),
            ("task3", Task3Recipe),
            ("transfer", TransferRecipe),
        ):
            if not isinstance(getattr(self, name), kind):
                raise ValueError(
                    f"BenchSettings.{name} must be a {kind.__name__}, got {getattr(self, name)!r}"
                )

    def with_values(self, assignments: dict[str, Any]) -> BenchSettings:
        """A copy with the fields named ``recipe.field`` (or ``train_rows``, ``train_limit``) set, each checked."""
        settings = self
        for name, value in assignments.items():
            try:
                settings = replace_field(settings, name, value)
            except (TypeError, ValueError) as error:
                raise ValueError(f"setting {name}={value!r}: {error}") from None
        return settings


QUICK_SETTINGS = BenchSettings(
    reference=ReferenceRecipe(epochs=1, augmented_epochs=1),
    task2=Task2Recipe(epochs=2, width=8),
    task3=Task3Recipe(epochs=2, ema_momentum=0.5, statistics_images=256),
    transfer=TransferRecipe(
        image_size=32, head_epochs=2, fine_tune_epochs=1, fine_tune_learning_rate=1e-4, statistics_images=256
    ),
    train_limit=600,
    corruption_images=100,
)


def recipe_from_dict(kind: type[Recipe], values: Mapping[str, Any], *, source: str = "recipe") -> Recipe:
    """A recipe (or any dataclass of recipes) from its ``dataclasses.asdict`` form, nested ones too.

    Unknown or missing fields raise ``ValueError`` naming ``source`` and the field.
    """
    if not isinstance(values, Mapping):
        raise ValueError(
            f"{source} must be a mapping of {kind.__name__}'s fields, got {type(values).__name__}"
        )
    fields = {item.name: item for item in dataclasses.fields(kind)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(
            f"{source}: {kind.__name__} has no field {', '.join(unknown)} (it has {', '.join(fields)})"
        )
    arguments = {}
    for name, value in values.items():
        nested = _dataclass_type(kind, name)
        arguments[name] = (
            recipe_from_dict(nested, value, source=f"{source}.{name}") if nested is not None else value
        )
    return kind(**arguments)


def replace_field(recipe: Recipe, dotted_name: str, value: Any) -> Recipe:
    """A copy of ``recipe`` with one field, reached by a dotted name (``task3.augmentation.noise``), set.

    The copy is checked as any recipe is; an unknown name raises ``ValueError`` listing the fields there are.
    """
    head, _, rest = dotted_name.partition(".")
    names = [item.name for item in dataclasses.fields(recipe)]
    if head not in names:
        raise ValueError(f"{type(recipe).__name__} has no field {head!r} (it has {', '.join(names)})")
    inner = getattr(recipe, head)
    if rest:
        if not dataclasses.is_dataclass(inner):
            raise ValueError(
                f"{type(recipe).__name__}.{head} is a value, not a recipe: {dotted_name!r} reaches past it"
            )
        value = replace_field(inner, rest, value)
    elif dataclasses.is_dataclass(inner):
        subnames = ", ".join(f"{head}.{item.name}" for item in dataclasses.fields(inner))
        raise ValueError(f"{type(recipe).__name__}.{head} is a recipe: set one of its fields ({subnames})")
    return dataclasses.replace(recipe, **{head: value})


def _dataclass_type(kind: type, name: str) -> type | None:
    """The dataclass type of field ``name`` of ``kind`` (annotations are strings here), else None."""
    annotation = {item.name: item.type for item in dataclasses.fields(kind)}[name]
    if isinstance(annotation, str):
        annotation = vars(sys.modules[kind.__module__]).get(annotation, annotation)
    return annotation if dataclasses.is_dataclass(annotation) else None
