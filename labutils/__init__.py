"""Helpers for the Sign Language MNIST lab report: ``import labutils as lu`` in a notebook.

The modules directly in this folder are the lab's core: the data and their split, the networks and
their training, evaluation and plots, each one short file. The names the notebooks use are imported
below, so an editor's go-to-definition on ``lu.NAME`` opens the module that defines it. The tooling
around the lab (the report runner, the benchmark, ``predict``, the command line, the results
contract, the pretrained weights' reader, the stand-in data, TensorFlow's set-up) lives in the
subpackages; ``docs/layout.md`` maps them.
"""

from .runtime import load_tensorflow

load_tensorflow()  # before the modules below import it

from .backbones import BACKBONES, check_transfer_parameters, resolve_weights
from .batch_norm import RecomputeBackboneStatistics, RecomputeBatchNormStatistics
from .data import LETTERS, NUM_CLASSES, label_to_index, label_to_letter
from .display import data_banner, describe_gap, plural, show_markdown, steps_table, weights_banner
from .explain import deletion_curve, deletion_scores, grad_cam, integrated_gradients, map_correlation
from .metrics import (
    classification_metrics,
    errors_by_family,
    family_neighbours,
    inference_rate,
    missed_family_records,
    per_letter_report,
)
from .models import (
    BackboneInput,
    RandomAffine,
    RandomGaussianBlur,
    RandomGaussianNoise,
    count_weights,
    load_model,
)
from .perturb import (
    CAMERA,
    CORRUPTION_FAMILIES,
    HELD_OUT_CORRUPTIONS,
    corrupt,
    corruption_summary,
    perturb,
    plot_robustness,
    robustness_by_model,
    robustness_table,
)
from .plot import (
    plot_accuracy_vs_seconds,
    plot_class_balance,
    plot_confusion_matrix,
    plot_family_neighbours,
    plot_family_sizes,
    plot_image_grid,
    plot_misclassified,
    plot_similarity_distributions,
)
from .recipes import Augmentation, ReferenceRecipe, Task2Recipe, Task3Recipe, TransferRecipe, steps_per_epoch
from .saving import SEED_REPORT, comparison_table, read_task_metrics, save_with_record, write_metrics
from .session import QUICK_SETTINGS, start_task
from .sources import load_dataset
from .split import (
    grouped_split,
    model_inputs,
    near_duplicate_families,
    nearest_neighbour_similarity,
    random_split,
)
from .training import EpochClock, FinalOrBest, StepBudget, SwapAverageWeights, history_frame, training_dataset
from .transfer import (
    build_transfer_model,
    cached_features,
    fine_tune_epoch_seconds,
    save_transfer_with_record,
    unfreeze,
)

__version__ = "0.1.0"
