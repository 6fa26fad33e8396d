"""A square float32 matrix saved as a plain .npy file (never pickled) and its checksum.

The query adapter (embed/adapter.py) is kept this way beside calibration.json,
which records the checksum; `load` refuses a file that does not match it. Does
not fit or apply the matrix.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from .errors import SettingsError


def checksum(matrix: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(matrix, dtype=np.float32).tobytes()).hexdigest()


def save(matrix: np.ndarray, path: Path) -> str:
    """Write the matrix as .npy (atomically: beside it, then renamed); its checksum."""
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    partial = path.with_name(path.name + ".tmp")
    with open(partial, "wb") as f:
        np.save(f, matrix, allow_pickle=False)
    os.replace(partial, path)
    return checksum(matrix)


def load(path: Path, expected_sha256: str) -> np.ndarray:
    """The saved matrix; SettingsError (one line) if missing, damaged or not what was saved."""
    try:
        matrix = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise SettingsError(
            f"{path} is unreadable ({type(exc).__name__}: {exc}); restore it (git checkout) "
            "or refit it with `assistant eval FILE --calibrate`"
        ) from None
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.dtype != np.float32:
        raise SettingsError(f"{path} is not a square float32 matrix; refit it with --calibrate")
    if checksum(matrix) != expected_sha256:
        raise SettingsError(f"{path} does not match its checksum in calibration.json; restore "
                            "both (git checkout) or refit with --calibrate")  # fmt: skip
    return matrix
