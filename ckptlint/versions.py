"""Version strings (`2.1`, `v2.6.0`) <-> tuples, for the torch floor of settings, messages and
the runtime phase alike."""

from __future__ import annotations

import re
from typing import Optional, Tuple


def parse_version(text: str) -> Optional[Tuple[int, ...]]:
    m = re.match(r"\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?", text)
    if not m:
        return None
    return tuple(int(g) for g in m.groups() if g is not None)


def format_version(version: Tuple[int, ...]) -> str:
    return ".".join(str(p) for p in version)
