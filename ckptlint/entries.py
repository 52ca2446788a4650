"""`[[tool.ckptlint.checkpoints]]`: the checkpoint entries of the config, validated in one
place for every reader of the config (`check`, `verify`, the language server), so that a bad
entry is a configuration error wherever the file is read, not only when `verify` uses it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from ckptlint.errors import ConfigError

ENTRY_KEYS = {"path": str, "model": str, "kwargs": dict, "key": str, "strict": bool, "safe-globals": list}
_TYPE_WORD = {str: "string", dict: "table", bool: "boolean", list: "list"}


@dataclass
class Entry:
    path: str
    model: Optional[str] = None
    kwargs: Dict[str, Any] = field(default_factory=dict)
    key: Optional[str] = None
    strict: bool = True
    safe_globals: List[str] = field(default_factory=list)
    config_file: Optional[str] = None


def parse_entries(raw, config_file: Path) -> List[Entry]:
    """Validate ``[[tool.ckptlint.checkpoints]]``. Raises ConfigError naming the key."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError(config_file, "must be an array of tables ([[tool.ckptlint.checkpoints]])",
                          key="checkpoints")
    entries = []
    for i, item in enumerate(raw, 1):
        if not isinstance(item, dict):
            raise ConfigError(config_file, f"entry {i} must be a table", key="checkpoints")
        for k in sorted(item):
            if k not in ENTRY_KEYS:
                raise ConfigError(config_file, f"unknown key `{k}` in entry {i} (expected one of: "
                                  + ", ".join(sorted(ENTRY_KEYS)) + ")", key=f"checkpoints.{k}")
            want = ENTRY_KEYS[k]
            value = item[k]
            if not isinstance(value, want) or (want is not bool and isinstance(value, bool)):
                raise ConfigError(config_file, f"entry {i}: expected a {_TYPE_WORD[want]}, got "
                                  f"{type(value).__name__}", key=f"checkpoints.{k}")
        if "path" not in item or not item["path"].strip():
            raise ConfigError(config_file, f"entry {i} needs a `path`", key="checkpoints.path")
        model = item.get("model")
        if model is not None and not re.fullmatch(r"[\w.]+(:[\w.]+)?", model):
            raise ConfigError(config_file, f"entry {i}: `model` must look like `package.module:callable`",
                              key="checkpoints.model")
        if "kwargs" in item and model is None:
            raise ConfigError(config_file, f"entry {i}: `kwargs` needs a `model`", key="checkpoints.kwargs")
        sg = item.get("safe-globals", [])
        if not all(isinstance(s, str) for s in sg):
            raise ConfigError(config_file, f"entry {i}: expected a list of strings",
                              key="checkpoints.safe-globals")
        entries.append(Entry(item["path"], model, dict(item.get("kwargs", {})), item.get("key"),
                             item.get("strict", True), list(sg), str(config_file)))
    return entries
