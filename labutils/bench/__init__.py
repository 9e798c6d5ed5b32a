"""The benchmark: the seed report's recipe and the project's models, side by side, in one run.

``python -m labutils bench`` trains each contender on the same rows and evaluates it on the test
set after every epoch (that evaluation is excluded from the training seconds). By default those
rows are every labelled training image — the grouped split's two sides together, as the report's
final networks are trained once the recipe has been chosen on the split; ``train_rows="split"``
trains on the split's training side instead and also measures the grouped-validation–test gap,
in accuracy and under the robustness perturbations (``val_robustness`` beside ``robustness``). A
run on all rows paired with such a split run (``validation_from``) sets that run's grouped-validation
robustness against its final networks' (``split_val_robustness``):

* ``reference`` — the seed report's network and recipe: Nadam, batch 128, 50 epochs, then 50
  more on augmented batches (rotation 10°, shift 0.05, shear 0.1, zoom 0.075);
* ``task2`` — the project's network as notebook 02 trains it (no augmentation);
* ``task3`` — that same model trained further on augmented batches, as in notebook 03;
* ``transfer`` — notebook 04's fine-tuned configuration: the packaged EfficientNet-Lite0's frozen,
  pooled ImageNet features plus a head (the curve's first point), then the backbone fine-tuned
  (batch norm frozen) on augmented batches (``weights_status`` says which weights it started from);
* ``transfer_control`` — the same network from random initialisation, batch norm trained, for the
  fine-tuning's steps divided by ``TransferRecipe.control_step_cost`` (about the fine-tuning's
  seconds on an unloaded 2-core CPU, in a unit no other job on the machine moves), its warm-up and
  cosine decay over those steps.

Every contender reports its final-epoch figures (the bench selects nothing on validation data) —
among them how many test families (near-copies of one photograph) it gets at least partly wrong —
the epochs and training seconds until its test accuracy first reached the reference's published
figures, training and inference speed and its process's peak memory. ``--budget`` caps each
contender's whole training (a capped contender still completes one epoch of each phase, and
its results say ``capped``). Each contender and seed
runs in a fresh process (so peak RSS is its own); ratios are taken against the reference
measured in the same run. Results go to ``results.json``, ``results.md`` and a plot.

Each finished job (a contender and seed) is also saved at once to ``OUT/jobs/``, so that a long
run that stops — a crash, a closed session — loses only the job in progress: ``--resume`` reuses
the saved jobs whose settings, budget, data and code match, and the results list them as reused
(their figures were then measured in an earlier run than the others).
"""

from __future__ import annotations

from ..results.readme import update_readme
from .render import (
    markdown_table,
    missed_families_sentence,
    reference_summary,
    target_lines,
    task2_target_lines,
)
from .robustness import validation_prediction
from .run import run_bench
from .settings import CONTENDERS, PUBLISHED, QUICK_SETTINGS, BenchSettings
from .summary import time_to_accuracy

__all__ = [
    "CONTENDERS",
    "PUBLISHED",
    "BenchSettings",
    "QUICK_SETTINGS",
    "markdown_table",
    "missed_families_sentence",
    "reference_summary",
    "run_bench",
    "target_lines",
    "task2_target_lines",
    "time_to_accuracy",
    "update_readme",
    "validation_prediction",
]
