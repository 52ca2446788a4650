"""Modules loaded on first use, for start-up time: `defer(name)` puts a stand-in for the module
into sys.modules, so that `import name` costs nothing until an attribute of it is read.

(importlib's LazyLoader does not do here: an `import` statement reads the module's `__spec__`,
which loads it; the stand-in holds its `__spec__` itself.)"""

from __future__ import annotations

import importlib
import sys
import types


class _Deferred(types.ModuleType):
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


def defer(name: str, check: bool = False) -> None:
    """Load `name` when first used. `check`: only if it is installed (a missing module then
    fails where it is used, as an import would); without it, `name` must exist."""
    if name in sys.modules:
        return
    spec = None
    if check:
        import importlib.util

        spec = importlib.util.find_spec(name)
        if spec is None:
            return
    module = _Deferred(name)
    module.__spec__ = spec
    sys.modules[name] = module
