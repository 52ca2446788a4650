"""Replacing a file so that readers see the old bytes or the new, never half of them."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Optional


def replace_file(target: Path, data: bytes, prefix: str, suffix: str = ".tmp", sync: bool = False,
                 prepare: Optional[Callable[[str], None]] = None) -> None:
    """Write `data` to a temporary file beside `target` (same filesystem), let `prepare(tmp)`
    set its mode or owner, then os.replace it over `target`; the temporary file never
    outlives a failure."""
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=Path(target).parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if sync:
                fh.flush()
                os.fsync(fh.fileno())
        if prepare is not None:
            prepare(tmp)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
