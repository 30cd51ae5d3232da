"""Atomic file writes: a file appears under its name complete, or not at all.

Downloads, checkpoints and stored results are all written through :func:`atomic_write`: the bytes go
to a temporary file beside the target, which is renamed over the target (``os.replace``, atomic on
one file system) only when the writing block finished without an error. An interrupted or failed
write leaves the previous file, if any, untouched, and no temporary file behind.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_write"]


@contextmanager
def atomic_write(path, mode: str = "wb", suffix: str = ".tmp"):
    """``with atomic_write(path) as f: f.write(...)`` — ``f.name`` is the temporary file's path.

    The parent folder is created if needed. Raising inside the block (for instance because a
    checksum did not match) deletes the temporary file and leaves ``path`` as it was.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        with open(tmp, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
