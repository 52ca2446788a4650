"""Inert records that stand in for what a pickle would create (nothing is ever imported)."""

from __future__ import annotations

import _compat_pickle
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple


class PickleScanError(Exception):
    """The pickle could not be read safely (malformed, truncated or over a limit)."""


def map_py2(module: str, name: str) -> Tuple[str, str]:
    """Apply pickle's Python 2 -> 3 renaming (``__builtin__`` -> ``builtins`` ...)."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


@dataclass(frozen=True)
class Global:
    """Stand-in for an imported object: only its qualified name."""

    module: str
    name: str

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass(eq=False)
class Call:
    """Stand-in for ``func(*args)`` (REDUCE, NEWOBJ, INST, OBJ) plus later BUILD state."""

    func: Any
    args: tuple = ()
    state: Any = None
    items: list = field(default_factory=list)


@dataclass(eq=False)
class StorageInfo:
    key: str
    dtype: str
    device: str
    numel: Optional[int]
    type_name: str


@dataclass(eq=False)
class TensorInfo:
    dtype: Optional[str]
    shape: Optional[Tuple[int, ...]]
    device: str
    storage: Optional[StorageInfo]
    kind: str = "tensor"
    extent: Optional[int] = None  # storage elements its view reaches (offset + farthest + 1)


class PDict(dict):
    """A dict that can carry attributes set by BUILD (``OrderedDict._metadata``)."""

    __hash__ = object.__hash__  # type: ignore[assignment]

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.attrs: Dict[str, Any] = {}


class PList(list):
    __hash__ = object.__hash__  # type: ignore[assignment]


def class_of(obj) -> Optional[str]:
    """The class a pickled object is built from (``copyreg`` reconstruction included)."""
    if not isinstance(obj, Call) or not isinstance(obj.func, Global):
        return None
    if obj.func.qualname in ("copyreg._reconstructor", "copyreg.__newobj__") and obj.args:
        cls = obj.args[0]
        return cls.qualname if isinstance(cls, Global) else None
    return obj.func.qualname
