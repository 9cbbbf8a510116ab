"""Files written atomically: to a temporary name in the same folder, then renamed over the old one.

A crash (or a full disk) mid-write leaves the previous version intact. No torch import here, so the
error path of a bad command line stays fast.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional

_UMASK = os.umask(0)
os.umask(_UMASK)


def write_atomic(path: Path, write: Callable[[Any], None], binary: bool = True) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it onto ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes it private; give it a normal file's mode
        with os.fdopen(fd, "wb" if binary else "w") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_json(path: Path, data: dict) -> None:
    write_atomic(path, lambda f: json.dump(data, f, indent=2, sort_keys=False, default=str), binary=False)


def read_json(path: Path) -> Optional[dict]:
    """The JSON object in ``path``, or None if there is none (missing or unreadable)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


