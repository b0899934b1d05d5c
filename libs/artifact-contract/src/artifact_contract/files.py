"""One atomic file writer for every package: a reader sees the old file or the new one, never a
half-written one, and the new one survives a power cut once the call returns.

The data goes to a temporary sibling (same directory, so ``os.replace`` is a rename), which is
fsynced, given its final mode (``mkstemp`` creates 0600, and a server running as another user
must read a reference or report), renamed over the target, and then the directory is fsynced so
the new entry is durable too.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

PUBLIC_MODE = 0o644


def atomic_write(path: Path, data: bytes, mode: int = PUBLIC_MODE) -> None:
    """Replace ``path`` with ``data`` atomically and durably (parents are created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            os.fchmod(handle.fileno(), mode)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def atomic_write_text(path: Path, text: str, mode: int = PUBLIC_MODE) -> None:
    atomic_write(path, text.encode("utf-8"), mode)


def write_json_atomically(
    path: Path,
    document: Any,
    *,
    sort_keys: bool = False,
    default: Callable[[Any], Any] | None = None,
) -> None:
    """``document`` as indented JSON (no NaN or Infinity: they are not JSON) plus a newline."""
    text = json.dumps(document, indent=2, sort_keys=sort_keys, default=default, allow_nan=False)
    atomic_write(path, (text + "\n").encode("utf-8"))


def fsync_directory(directory: Path) -> None:
    """Make a new, replaced or removed directory entry durable."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
