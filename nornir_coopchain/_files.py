"""Writing files so that a crash leaves either the old content or the new, never a mix."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["write_atomic"]


def write_atomic(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically (temp file, fsync, ``os.replace``).

    Missing parent directories are created; the temp file (``.<name>.*`` next to ``path``)
    is removed if anything fails.

    Arguments:
        path: the file to write.
        data: its new content.
        durable: fsync before the rename, so the file survives a power loss. Without it a
            crash still never leaves a mix, but the file may be lost: for files that can be
            derived again (one fsync costs milliseconds, per file).

    Raises:
        OSError: the directory or file cannot be written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
