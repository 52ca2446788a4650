"""Finds every Rule subclass in ckptlint/rules/ (no list to keep in sync)."""

from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import sys
import types
from functools import lru_cache
from typing import Dict

from ckptlint.rules._base import Rule


class _LazyModule(types.ModuleType):
    """Stands in for a module until an attribute is used, then loads it.

    Rule modules `import libcst` at the top, but selection, the cache and the prefilter only
    read class attributes; LibCST (~0.3 s to import) then loads only when a file is parsed.
    (importlib's LazyLoader does not do here: an `import` statement reads `__spec__`, which
    loads it.)"""

    def __getattr__(self, attr):
        name = self.__name__
        if sys.modules.get(name) is self:
            del sys.modules[name]
        real = importlib.import_module(name)
        self.__dict__.update(real.__dict__)
        self.__class__ = _Loaded
        return getattr(real, attr)


class _Loaded(types.ModuleType):
    def __getattr__(self, attr):  # a submodule imported after the first load
        return getattr(sys.modules[self.__name__], attr)


def _import_lazily(name: str) -> None:
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None:
        return
    module = _LazyModule(name)
    module.__spec__ = spec
    sys.modules[name] = module


@lru_cache(maxsize=None)
def all_rules() -> Dict[str, type]:
    _import_lazily("libcst")

    found: Dict[str, type] = {}
    package = __name__.rpartition(".")[0]  # ckptlint.rules, whose folder this module is in
    for info in sorted(pkgutil.iter_modules([os.path.dirname(__file__)]), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        for obj in vars(module).values():
            if (
                isinstance(obj, type)
                and issubclass(obj, Rule)
                and obj is not Rule
                and obj.__module__ == module.__name__
                and getattr(obj, "code", None)
            ):
                if obj.code in found:
                    raise RuntimeError(f"duplicate rule code {obj.code}")
                found[obj.code] = obj
    return dict(sorted(found.items()))


def get_rule(code: str):
    return all_rules().get(code.upper())
