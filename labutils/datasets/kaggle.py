"""The public Kaggle dataset, downloaded by kagglehub into its cache (no credentials needed)."""

from __future__ import annotations

import socket
from pathlib import Path

from ..data import KAGGLE_DATASET, DataNotFoundError

__all__ = ["download", "network_reachable"]


def network_reachable(host: str = "www.kaggle.com", port: int = 443, timeout: float = 5.0) -> bool:
    """Whether a TCP connection to ``host`` opens within ``timeout`` seconds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def download(timeout: float) -> Path:
    """The folder kagglehub downloads the dataset into; :class:`DataNotFoundError` at once when offline."""
    if not network_reachable(timeout=timeout):
        raise DataNotFoundError(
            f"kagglehub download of {KAGGLE_DATASET} skipped: www.kaggle.com is not reachable "
            f"within {timeout:.0f} s (offline?)"
        )
    try:
        import kagglehub

        return Path(kagglehub.dataset_download(KAGGLE_DATASET))
    except Exception as error:  # kagglehub raises many kinds; all mean "not downloaded"
        raise DataNotFoundError(f"kagglehub download of {KAGGLE_DATASET} failed: {error}") from error
