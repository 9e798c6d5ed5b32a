"""Pictures from outside (PNG, JPEG, TIFF, ... from a phone or a webcam) as the networks' 28x28 gray images.

A picture is read the way a viewer shows it, then reduced to what the networks saw in
training:

- **orientation**: the EXIF orientation tag is applied (a phone photo taken upright is read
  upright);
- **transparency**: composited on white, as a viewer shows it;
- **bit depth**: 16-bit images are scaled by the 16-bit range and float images by 0-1 (or by
  their own range where they leave it, with a warning), never clipped to white;
- **size**: a picture of more than :data:`MAX_IMAGE_PIXELS` pixels is refused before it is
  decoded (a "decompression bomb" declares a huge size in a small file);
- then gray, centre-cropped to a square and resized to 28x28 (area-weighted, so that a large
  photo is averaged, not sampled).

Pictures the networks can hardly read (smaller than 28 pixels a side, or of one grey level)
are still answered, with a warning.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data import IMAGE_SIZE

__all__ = ["MAX_IMAGE_PIXELS", "Picture", "read_picture"]

#: The largest picture accepted, in pixels (100 megapixels: above any phone camera's default).
MAX_IMAGE_PIXELS = 100_000_000

#: Below this standard deviation (of 0-255) a picture counts as uniform: there is nothing to read.
UNIFORM_STD = 1.0


@dataclass
class Picture:
    """A picture as the networks' input: ``pixels`` uint8 (28, 28), and what the reader noticed."""

    pixels: np.ndarray
    width: int
    height: int
    mode: str
    warnings: list[str] = field(default_factory=list)


def read_picture(path: str | Path) -> Picture:
    """Read one picture file into a 28x28 uint8 gray :class:`Picture`; a :class:`ValueError` names the file."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the limit below is ours
            with Image.open(path) as image:
                width, height = image.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise ValueError(_too_large(path, width, height))
                image.load()
                mode = image.mode
                upright = ImageOps.exif_transpose(image)
    except Image.DecompressionBombError as error:  # Pillow's own check, made at open above twice its limit
        declared = re.search(r"\((\d+) pixels\)", str(error))
        size = f"{int(declared[1]):,} pixels" if declared else "a size"
        raise ValueError(
            f"{path}: declares {size}, more than the limit of {MAX_IMAGE_PIXELS:,} "
            "(a decompression bomb, or a picture to shrink first)"
        ) from error
    except UnidentifiedImageError as error:
        raise ValueError(f"{path}: not a readable image ({error})") from error
    except ValueError as error:  # Pillow's own refusals (a text chunk too large, ...) do not name the file
        if str(error).startswith(f"{path}: "):
            raise
        raise ValueError(f"{path}: cannot read the image ({error})") from error
    except OSError as error:
        raise ValueError(f"{path}: cannot read the image ({error})") from error
    notes: list[str] = []
    gray = _gray(upright, path, notes)  # float32, 0-255
    height_up, width_up = gray.shape
    if min(width_up, height_up) < IMAGE_SIZE:
        notes.append(
            f"the picture is only {width_up}x{height_up} pixels: it is enlarged to {IMAGE_SIZE}x{IMAGE_SIZE}, "
            "so the network sees less than it needs"
        )
    pixels = _square_28(gray)
    if float(gray.std()) < UNIFORM_STD:
        notes.append("the picture is of one grey level: there is no hand to read, the letters are a guess")
    return Picture(pixels, width, height, mode, notes)


def _too_large(path: Path, width: int, height: int) -> str:
    return (
        f"{path}: {width}x{height} is {width * height:,} pixels, more than the limit of {MAX_IMAGE_PIXELS:,} "
        "(a decompression bomb, or a picture to shrink first)"
    )


def _gray(image, path: Path, notes: list[str]) -> np.ndarray:
    """The picture as float32 gray values in 0-255, whatever its mode and bit depth."""
    from PIL import Image

    mode = image.mode
    if mode.startswith("I;16"):
        return np.asarray(image, dtype=np.float32) * (255.0 / 65535.0)
    if mode in {"I", "F"}:
        values = np.asarray(image, dtype=np.float64)
        if not np.isfinite(values).all():
            raise ValueError(f"{path}: the image holds values that are not finite numbers (NaN or infinity)")
        low, high = float(values.min()), float(values.max())
        if mode == "F" and low >= 0.0 and high <= 1.0:
            return (values * 255.0).astype(np.float32)
        if mode == "I" and low >= 0 and high <= 255:
            return values.astype(np.float32)
        if mode == "I" and low >= 0 and high <= 65535:
            return (values * (255.0 / 65535.0)).astype(np.float32)
        notes.append(
            f"the {'float' if mode == 'F' else '32-bit'} image spans {low:g} to {high:g}: "
            "it is scaled by its own range"
        )
        span = high - low
        return ((values - low) * (255.0 / span) if span > 0 else np.zeros_like(values)).astype(np.float32)
    has_alpha = mode in {"RGBA", "LA", "PA", "RGBa", "La"} or "transparency" in image.info
    if has_alpha:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return np.asarray(image.convert("L"), dtype=np.float32)


def _square_28(gray: np.ndarray) -> np.ndarray:
    """Centre-crop to a square and resize to 28x28 with area-weighted (antialiased) resampling."""
    from PIL import Image

    height, width = gray.shape
    side = min(width, height)
    top, left = (height - side) // 2, (width - side) // 2
    square = Image.fromarray(np.ascontiguousarray(gray[top : top + side, left : left + side]), mode="F")
    small = np.asarray(square.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR), dtype=np.float32)
    return np.clip(np.rint(small), 0, 255).astype(np.uint8)
