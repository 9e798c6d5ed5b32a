"""Helpers for the Sign Language MNIST lab report: data, splits, plots and the report runner.

Everything a notebook needs is reachable from here, so ``import labutils as lu`` is enough.
Submodules load on first use (PEP 562), so the command line starts fast and modules that need
TensorFlow are only imported by the notebooks that use them.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: Public name -> submodule that defines it (tests/test_package.py keeps this in step with each module's __all__).
_EXPORTS: dict[str, tuple[str, ...]] = {
    "data": (
        "CLASS_LABELS",
        "CSV_HEADER",
        "DataNotFoundError",
        "DataValidationError",
        "IMAGE_SIZE",
        "KAGGLE_DATASET",
        "KNOWN_SHA256",
        "LETTERS",
        "NUM_CLASSES",
        "STANDIN_MARKER",
        "file_sha256",
        "index_to_label",
        "label_to_index",
        "label_to_letter",
        "letter_to_label",
        "read_sign_mnist_csv",
        "read_standin_marker",
    ),
    "sources": (
        "DataFiles",
        "FALLBACK_STANDIN_ROWS",
        "SignMNIST",
        "find_data_files",
        "load_dataset",
        "repository_root",
    ),
    "choices": ("FINE_TUNE_DEPTHS", "HEADS", "POOLINGS"),
    "recipes": (
        "Augmentation",
        "ReferenceRecipe",
        "Task2Recipe",
        "Task3Recipe",
        "TransferRecipe",
        "recipe_from_dict",
        "replace_field",
        "steps_per_epoch",
    ),
    "display": (
        "banner_html",
        "data_banner",
        "show_markdown",
        "source_banner_html",
        "weights_banner",
        "weights_banner_html",
    ),
    "plot": (
        "plot_accuracy_vs_seconds",
        "plot_class_balance",
        "plot_group_sizes",
        "plot_image_grid",
        "plot_similarity_distributions",
    ),
    "split": (
        "Split",
        "grouped_split",
        "make_split",
        "near_duplicate_groups",
        "nearest_neighbour_similarity",
        "random_split",
        "standardize_images",
    ),
    "synthetic": ("GENERATOR_VERSION", "make_standin", "write_standin"),
    "models": (
        "compact_cnn",
        "count_weights",
        "load_model",
        "seed_cnn",
    ),
    "layers": (
        "BackboneInput",
        "BlurPooling2D",
        "PerImageStandardization",
        "RandomAffine",
        "RandomGaussianBlur",
        "RandomGaussianNoise",
    ),
    "backbones": ("BACKBONES", "BackboneSpec"),
    "inputs": ("ModelInputs", "model_inputs", "prepare_task_data", "to_model_input"),
    "training": (
        "augmentation_pipeline",
        "cosine_schedule",
        "reference_augmentation",
        "training_dataset",
        "warmup_cosine",
    ),
    "callbacks": (
        "EpochClock",
        "FinalOrBest",
        "RecomputeBatchNormStatistics",
        "SecondsCosineSchedule",
        "SwapAverageWeights",
        "TimeBudget",
        "history_frame",
        "recompute_batch_norm_statistics",
        "statistics_sample",
    ),
    "transfer": (
        "RecomputeBackboneStatistics",
        "TransferModel",
        "build_transfer_model",
        "recompute_backbone_statistics",
        "cached_features",
        "check_transfer_parameters",
        "fine_tune_epoch_seconds",
        "resolve_weights",
        "transfer_record",
        "unfreeze",
        "weights_fingerprint",
    ),
    "efficientnet_lite": (
        "efficientnet_lite0",
        "lite0_weights",
        "packaged_weights_file",
        "packaged_weights_source",
    ),
    "narration": (
        "describe_missed_families",
        "describe_model",
        "describe_test_families",
        "describe_transfer_answers",
        "plural",
    ),
    "torch_legacy": ("WeightsFileError", "read_legacy_state_dict"),
    "evaluation": (
        "COMPARISON_COLUMNS",
        "METRIC_FIELDS",
        "classification_metrics",
        "comparison_table",
        "describe_gap",
        "errors_by_family",
        "family_neighbours",
        "inference_rate",
        "missed_family_records",
        "model_record",
        "per_letter_report",
        "plot_confusion_matrix",
        "plot_family_neighbours",
        "plot_misclassified",
        "read_task_metrics",
        "single_image_rate",
        "write_metrics",
    ),
    "perturb": (
        "CAMERA",
        "PERTURBATIONS",
        "ROBUSTNESS_STRENGTHS",
        "TARGET_STRENGTHS",
        "perturb",
        "plot_robustness",
        "robustness_by_model",
        "robustness_table",
    ),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'labutils' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
