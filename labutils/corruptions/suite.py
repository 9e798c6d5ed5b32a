"""Sign-MNIST-C: eighteen camera-like corruptions in four families, each at five severities, seeded.

In the spirit of MNIST-C (Mu & Gilmer 2019) and ImageNet-C (Hendrycks & Dietterich 2019): severity 1
is a slightly poor camera, 3 a poor one (severities 1-3: "what cameras do"), 5 a hand a person still
reads with effort. Fourteen corruptions are albumentations' own (2.0: MIT-licensed, works on 28x28
grayscale); four are written here: ``contrast`` (albumentations scales around black, not around the
image's mean, so it darkens as well), ``fog`` (its ``RandomFog`` needs three channels and paints disks
sized for large photographs), and ``vignetting`` (it has none).

The types are split once, before any network was scored on them (docs/decisions.md, "The corruption
benchmark"): :data:`HELD_OUT` (one or more per family) are never used to choose an augmentation and
are scored once, as the answer to "does the robustness generalise"; the others may guide choices, on
the grouped validation split only.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import ndimage

__all__ = ["CORRUPTIONS", "FAMILIES", "HELD_OUT", "SEVERITIES", "corrupt_images"]

SEVERITIES = (1, 2, 3, 4, 5)


def _albumentations(make: Callable[[Any, Any], Any]) -> Callable:
    """A corruption made of one albumentations transform, built by ``make(A, value)``."""

    def apply(images: np.ndarray, value: Any, seed: int) -> np.ndarray:
        import albumentations as A  # imported on first use: the notebooks that do not corrupt never pay it

        transform = A.Compose([make(A, value)], seed=seed)
        pixels = np.round(images * 255).astype(np.uint8)
        out = np.stack([transform(image=image)["image"] for image in pixels])
        return out.astype(np.float32) / 255.0

    return apply


def _contrast(images: np.ndarray, factor: float, seed: int) -> np.ndarray:
    means = images.mean(axis=(1, 2), keepdims=True)
    return (images - means) * factor + means


def _fog(images: np.ndarray, thickness: float, seed: int) -> np.ndarray:
    """A bright haze of uneven thickness: each image blended towards light gray through a smooth random
    field (Gaussian-filtered noise, 7-pixel features) whose mean is ``thickness``."""
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.normal(size=images.shape), sigma=(0, 3.5, 3.5))
    field /= field.std(axis=(1, 2), keepdims=True) + 1e-8
    weight = np.clip(thickness * (1 + 0.5 * field), 0, 1)
    return images * (1 - weight) + 0.85 * weight


def _vignetting(images: np.ndarray, strength: float, seed: int) -> np.ndarray:
    """Light falling off towards the corners (a cheap lens), around a centre drawn within 3 px of the
    middle: brightness times 1 - strength * (distance / half-diagonal)^2."""
    rng = np.random.default_rng(seed)
    centres = 13.5 + rng.uniform(-3, 3, (len(images), 2))
    rows, columns = np.mgrid[0:28, 0:28]
    distance = (rows[None] - centres[:, 0, None, None]) ** 2 + (
        columns[None] - centres[:, 1, None, None]
    ) ** 2
    return images * (1 - strength * np.clip(distance / (2 * 14.0**2), 0, 1))


#: Per corruption: its family, its five severities' values, and the function ``(images, value, seed)``.
CORRUPTIONS: dict[str, tuple[str, tuple, Callable]] = {
    "gaussian_noise": ("noise", (0.04, 0.06, 0.08, 0.11, 0.15),
        _albumentations(lambda A, v: A.GaussNoise(std_range=(v, v), p=1))),
    "shot_noise": ("noise", (0.01, 0.02, 0.04, 0.07, 0.12),
        _albumentations(lambda A, v: A.ShotNoise(scale_range=(v, v), p=1))),
    "impulse_noise": ("noise", (0.01, 0.02, 0.04, 0.06, 0.09),
        _albumentations(lambda A, v: A.SaltAndPepper(amount=(v, v), p=1))),
    "speckle_noise": ("noise", (0.06, 0.1, 0.15, 0.2, 0.3),
        _albumentations(lambda A, v: A.MultiplicativeNoise(
            multiplier=(1 - v * 3**0.5, 1 + v * 3**0.5), elementwise=True, p=1))),
    "defocus_blur": ("blur", ((1, 0.1), (1, 0.5), (2, 0.1), (2, 0.5), (3, 0.3)),
        _albumentations(lambda A, v: A.Defocus(radius=(v[0], v[0]), alias_blur=(v[1], v[1]), p=1))),
    "motion_blur": ("blur", (3, 5, 7, 9, 11),
        _albumentations(lambda A, v: A.MotionBlur(blur_limit=(v, v), p=1))),
    "zoom_blur": ("blur", (1.06, 1.11, 1.16, 1.21, 1.26),
        _albumentations(lambda A, v: A.ZoomBlur(max_factor=(v, v), step_factor=(0.02, 0.02), p=1))),
    "glass_blur": ("blur", ((0.3, 1, 1), (0.5, 1, 1), (0.5, 1, 2), (0.6, 2, 1), (0.7, 2, 2)),
        _albumentations(lambda A, v: A.GlassBlur(sigma=v[0], max_delta=v[1], iterations=v[2], p=1))),
    "pixelate": ("digital", (0.8, 0.65, 0.5, 0.4, 0.3),  # each pixel the mean of its block, as a small sensor
        _albumentations(lambda A, v: A.Downscale(
            scale_range=(v, v), interpolation_pair={"downscale": 3, "upscale": 0}, p=1))),  # cv2 INTER_AREA, INTER_NEAREST
    "jpeg": ("digital", (30, 20, 15, 10, 7),
        _albumentations(lambda A, v: A.ImageCompression(quality_range=(v, v), p=1))),
    "contrast": ("digital", (0.6, 0.45, 0.35, 0.25, 0.15), _contrast),
    "brightness": ("digital", (0.06, 0.12, 0.18, 0.24, 0.3),
        _albumentations(lambda A, v: A.RandomBrightnessContrast(
            brightness_limit=(v, v), contrast_limit=(0, 0), p=1))),
    "gamma": ("digital", (130, 160, 190, 220, 260),
        _albumentations(lambda A, v: A.RandomGamma(gamma_limit=(v, v), p=1))),
    "elastic": ("scene", (8, 12, 16, 20, 25),
        _albumentations(lambda A, v: A.ElasticTransform(alpha=v, sigma=3, border_mode=1, p=1))),
    "perspective": ("scene", (0.04, 0.06, 0.08, 0.10, 0.12),
        _albumentations(lambda A, v: A.Perspective(
            scale=(v, v), keep_size=True, border_mode=1, p=1))),  # border_mode 1: cv2.BORDER_REPLICATE
    "fog": ("scene", (0.15, 0.25, 0.35, 0.45, 0.55), _fog),
    "vignetting": ("scene", (0.2, 0.35, 0.5, 0.65, 0.8), _vignetting),
    "occlusion": ("scene", (5, 7, 9, 11, 13),
        _albumentations(lambda A, v: A.CoarseDropout(
            num_holes_range=(1, 1), hole_height_range=(v, v), hole_width_range=(v, v), fill="random_uniform", p=1))),
}  # fmt: skip

#: The corruption types per family, in the order above.
FAMILIES: dict[str, tuple[str, ...]] = {
    family: tuple(name for name, entry in CORRUPTIONS.items() if entry[0] == family)
    for family in dict.fromkeys(entry[0] for entry in CORRUPTIONS.values())
}

#: Held out from every choice, fixed before any network was scored (at least one per family).
HELD_OUT: tuple[str, ...] = ("impulse_noise", "zoom_blur", "jpeg", "elastic", "fog")


def corrupt_images(images: np.ndarray, kind: str, severity: int, seed: int) -> np.ndarray:
    """``images`` (N, 28, 28) or (N, 28, 28, 1), scaled to 0-1, under corruption ``kind`` at ``severity``
    (1-5); float32 in 0-1, the input's shape. The same images, kind, severity and seed give the same result."""
    if kind not in CORRUPTIONS:
        raise ValueError(f"corruption must be one of {sorted(CORRUPTIONS)}, got {kind!r}")
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {list(SEVERITIES)}, got {severity!r}")
    images = np.asarray(images, dtype=np.float32)
    flat = images[..., 0] if images.ndim == 4 else images
    if flat.ndim != 3 or flat.shape[1:] != (28, 28):
        raise ValueError(f"images must have the shape (N, 28, 28) or (N, 28, 28, 1), got {images.shape}")
    if flat.size and (flat.min() < 0 or flat.max() > 1):
        raise ValueError("images must be scaled to 0-1")
    _, values, apply = CORRUPTIONS[kind]
    # one stream per (seed, kind, severity): adding a corruption or reordering them changes no other's
    stream = int(np.random.SeedSequence([seed, zlib.crc32(kind.encode()), severity]).generate_state(1)[0])
    corrupted = np.clip(apply(flat, values[severity - 1], stream), 0.0, 1.0) if len(flat) else flat
    return corrupted.astype(np.float32).reshape(images.shape)
