"""Finds every rule: each Rule subclass in ckptlint/rules/ (no list to keep in sync), and the
rules of installed plugins, which name them under the `ckptlint.rules` entry point group:

    [project.entry-points."ckptlint.rules"]
    acme = "acme_ckpt.rules"            # a module of Rule subclasses, or one Rule class

Built once per process; the table never changes after that."""

from __future__ import annotations

import importlib
import os
import re
import sys
import types
from functools import lru_cache
from typing import Dict, Iterator, List, Mapping, Tuple

from ckptlint.errors import PluginError
from ckptlint.lazy import defer

GROUP = "ckptlint.rules"
_CODE = re.compile(r"[A-Z]+[0-9]+")  # what `# noqa: CODE` and selectors can name


@lru_cache(maxsize=None)
def all_rules() -> Mapping[str, type]:
    """{code: rule class}, sorted by code: the built-in rules, then the plugins'."""
    import pkgutil

    # Rule modules `import libcst` at the top, but selection, the cache and the prefilter only
    # read class attributes; LibCST (~0.3 s to import) then loads only when a file is parsed.
    defer("libcst", check=True)
    found: Dict[str, type] = {}
    package = __name__.rpartition(".")[0]  # ckptlint.rules, whose folder this module is in
    for info in sorted(pkgutil.iter_modules([os.path.dirname(__file__)]), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        for rule in _rules_in(module):
            if rule.code in found:
                raise RuntimeError(f"duplicate rule code {rule.code}")
            found[rule.code] = rule
    for name, value, rules in _plugin_rules():
        for rule in rules:
            _check_plugin_rule(rule, name, value, found)
            found[rule.code] = rule
    return types.MappingProxyType(dict(sorted(found.items())))


_OPT_IN = re.compile(r"^    default_enabled\s*=\s*False\b", re.M)
_MODULE = re.compile(r"(ckpt\d+)_\w+\.py")


@lru_cache(maxsize=None)
def rule_index() -> Mapping[str, bool]:
    """{code: default_enabled} of every rule: what selecting rules needs, and all that a run
    served by the cache needs. Without plugins it imports no rule module (40 of them and
    their helpers are most of a warm run's start-up): a built-in rule module is named after
    its code (`ckpt002_...py`) and an opt-in rule says `default_enabled = False` in its
    class (tests/test_rule_examples.py checks this against the classes)."""
    if _any_plugin():
        return types.MappingProxyType({c: r.default_enabled for c, r in all_rules().items()})
    found = {}
    folder = os.path.dirname(__file__)
    for name in sorted(os.listdir(folder)):
        m = _MODULE.fullmatch(name)
        if m:
            with open(os.path.join(folder, name), encoding="utf-8") as fh:
                found[m.group(1).upper()] = not _OPT_IN.search(fh.read())
    return types.MappingProxyType(found)


def _rules_in(module) -> List[type]:
    from ckptlint.rules._base import Rule

    return [obj for obj in vars(module).values()
            if isinstance(obj, type) and issubclass(obj, Rule) and obj is not Rule
            and obj.__module__ == module.__name__ and getattr(obj, "code", None)]


def _plugin_rules() -> Iterator[Tuple[str, str, List[type]]]:
    """(entry point name, what it names, its rules) of every `ckptlint.rules` entry point."""
    if not _any_plugin():
        return
    from importlib.metadata import entry_points

    found = entry_points()
    points = found.select(group=GROUP) if hasattr(found, "select") else found.get(GROUP, [])  # 3.9: a dict
    for ep in sorted(points, key=lambda e: (e.name, e.value)):
        try:
            obj = ep.load()
        except Exception as exc:
            raise PluginError(f"the rule plugin `{ep.name} = {ep.value}` cannot be loaded: "
                              f"{type(exc).__name__}: {exc}") from None
        from ckptlint.rules._base import Rule

        if isinstance(obj, types.ModuleType):
            rules = _rules_in(obj)
        elif isinstance(obj, type) and issubclass(obj, Rule):
            rules = [obj]
        else:
            raise PluginError(f"the rule plugin `{ep.name} = {ep.value}` names neither a module of rules "
                              "nor a ckptlint Rule class")
        yield ep.name, ep.value, rules


def _check_plugin_rule(rule: type, name: str, value: str, found: Dict[str, type]) -> None:
    where = f"the rule plugin `{name} = {value}`"
    if not _CODE.fullmatch(rule.code or ""):
        raise PluginError(f"{where}: rule code `{rule.code}` must be capital letters then digits (`ACME001`)")
    if rule.code in found:
        raise PluginError(f"{where}: rule code `{rule.code}` is already taken by {found[rule.code].__module__}")
    if rule.phase != "static":
        raise PluginError(f"{where}: `{rule.code}` is a {rule.phase} rule; plugins add static rules")


@lru_cache(maxsize=None)
def _any_plugin() -> bool:
    """Does an installed distribution declare a `ckptlint.rules` entry point? Read from the
    entry_points.txt files on sys.path, without importlib.metadata, whose import costs more
    start-up (~30 ms) than the whole static pass on a file without triggers."""
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.endswith((".dist-info", ".egg-info")):
                try:
                    with open(os.path.join(entry or ".", name, "entry_points.txt"), encoding="utf-8") as fh:
                        if f"[{GROUP}]" in fh.read():
                            return True
                except OSError:
                    continue
    return False


def plugin_fingerprint() -> Tuple[Tuple[str, str, int, int], ...]:
    """(code, module, mtime, size) of each plugin rule's module file: cached results made
    with another version of a plugin are not reused."""
    if not _any_plugin():
        return ()
    out = []
    for code, rule in all_rules().items():
        if rule.__module__.split(".")[0] == "ckptlint":
            continue
        path = getattr(sys.modules.get(rule.__module__), "__file__", None) or ""
        try:
            st = os.stat(path)
            out.append((code, rule.__module__, st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((code, rule.__module__, 0, 0))
    return tuple(out)


def get_rule(code: str):
    return all_rules().get(code.upper())


def rule_class(code: str):
    """The rule with this exact code (None if none), importing no other built-in rule module:
    a config's rule options are checked on every run, which may need no rule otherwise."""
    if not re.fullmatch(r"CKPT[0-9]+", code) or _any_plugin():
        return all_rules().get(code)
    for name in os.listdir(os.path.dirname(__file__)):
        if name.startswith(code.lower() + "_") and _MODULE.fullmatch(name):
            defer("libcst", check=True)
            module = importlib.import_module(f"{__name__.rpartition('.')[0]}.{name[:-3]}")
            return next((r for r in _rules_in(module) if r.code == code), None)
    return None
