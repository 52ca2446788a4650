"""Finds every Rule subclass in ckptlint/rules/ (no list to keep in sync)."""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache
from typing import Dict

from ckptlint.rules._base import Rule


@lru_cache(maxsize=None)
def all_rules() -> Dict[str, type]:
    import ckptlint.rules as pkg

    found: Dict[str, type] = {}
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{pkg.__name__}.{info.name}")
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
