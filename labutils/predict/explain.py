"""``predict --explain DIR``: for each answered input, a picture of what the network saw and where it
looked (its Grad-CAM map for the letter it said, :func:`labutils.explain.grad_cam`), titled with its
top-3 letters. Pictures are all explained; a CSV file's first ``limit`` rows are."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np

__all__ = ["DEFAULT_EXPLAIN_LIMIT", "ExplanationWriter"]

#: CSV rows explained per file unless ``--explain-limit`` says otherwise.
DEFAULT_EXPLAIN_LIMIT = 100


class ExplanationWriter:
    """Writes the ``--explain`` pictures into ``folder``, numbered in the order of the answers."""

    def __init__(self, folder: str | Path, limit: int = DEFAULT_EXPLAIN_LIMIT):
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"--explain-limit must be a whole number of rows, at least 1, got {limit!r}")
        self.folder, self.limit = Path(folder), limit
        if self.folder.exists() and not self.folder.is_dir():
            raise ValueError(f"--explain {self.folder}: is a file, not a folder for the pictures")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ValueError(
                f"--explain {self.folder}: cannot be created ({error.strerror or error})"
            ) from error
        self.written, self._rows = 0, Counter()

    def wants(self, input_name: str, row: int | None) -> bool:
        """Whether this answer is explained: every picture, a CSV file's first ``limit`` rows."""
        if row is None:
            return True
        self._rows[input_name] += 1
        return self._rows[input_name] <= self.limit

    def write(
        self, input_name: str, row: int | None, image: np.ndarray, heat: np.ndarray, top3: list
    ) -> Path:
        """One picture: the 28x28 ``image`` the network saw, beside it with ``heat`` (0-1) overlaid,
        titled with ``top3``; its file is named after the input (and row), numbered to stay apart."""
        from matplotlib.figure import Figure

        self.written += 1
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(input_name).name)[:80]
        path = self.folder / f"{self.written:05d}-{stem}{'' if row is None else f'-row{row}'}.png"
        figure = Figure(figsize=(4.2, 2.5))
        seen, looked = figure.subplots(1, 2)
        for ax in (seen, looked):
            ax.imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            ax.set_axis_off()
        looked.imshow(heat, cmap="jet", alpha=0.45, vmin=0, vmax=1, interpolation="bilinear")
        seen.set_title("what it saw (28×28)", fontsize=8)
        looked.set_title(f"where it looked for {top3[0]['letter']}", fontsize=8)
        figure.suptitle("  ·  ".join(f"{t['letter']} {t['probability']:.3f}" for t in top3), fontsize=10)
        figure.savefig(path, dpi=100)
        return path
