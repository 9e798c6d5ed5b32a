"""The report's two profiles: the parameters each notebook gets in a quick and in a full run."""

from __future__ import annotations

from typing import Any

__all__ = ["CELL_TIMEOUT", "PROFILES", "notebook_parameters"]

#: Parameters per profile and notebook (by the notebook's file stem); "*" applies to all.
PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "quick": {
        "*": {"PROFILE": "quick"},
        "01_data": {"SAMPLE_SIZE": 500},
        "02_cnn": {"EPOCHS": 12, "WIDTH": 16, "RANDOM_SPLIT_EPOCHS": 1, "TRAIN_LIMIT": 3000},
        "03_augmentation": {
            "EPOCHS": 2,
            "TRAIN_LIMIT": 3000,
            "ROBUSTNESS_IMAGES": 300,
            "EMA_MOMENTUM": 0.9,
            "STATISTICS_IMAGES": 512,
        },
        # the packaged backbone is pretrained here too; VGG16 asks for no download (a labelled random start)
        "04_transfer": {
            "BACKBONES": ["efficientnet_lite0", "vgg16"],
            "IMAGE_SIZES": {"efficientnet_lite0": 32, "vgg16": 32},
            "WEIGHTS": {"vgg16": None},
            "TRAIN_LIMIT": 1000,
            "HEAD_EPOCHS": 5,
            "FINE_TUNE_EPOCHS": 1,
            "FINE_TUNE_LEARNING_RATE": 1e-4,
            "FINE_TUNE_VALIDATION_IMAGES": 300,
            "STEP_PROBE_BATCHES": 1,
            "STATISTICS_IMAGES": 256,
        },
    },
    "full": {
        "*": {"PROFILE": "full"},
        "01_data": {"SAMPLE_SIZE": 3000},
    },
}

#: Longest time one cell may run, per profile (seconds).
CELL_TIMEOUT = {"quick": 600, "full": 3600}


def notebook_parameters(profile: str, name: str, common: dict[str, Any]) -> dict[str, Any]:
    """Parameters for one notebook: the profile's, then the run's common ones (data dir, output)."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {profile!r}")
    return {**PROFILES[profile].get("*", {}), **PROFILES[profile].get(name, {}), **common}
