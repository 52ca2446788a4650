"""Rules: one module per rule (see _base.Rule), found by the registry (_registry.py): the
built-in modules of this package and the `ckptlint.rules` entry points of installed plugins."""

from ckptlint.rules._registry import all_rules, get_rule, plugin_fingerprint, rule_class, rule_index

__all__ = ["Rule", "Valid", "Invalid", "Option", "all_rules", "get_rule", "plugin_fingerprint", "rule_class",
           "rule_index"]


def __getattr__(name):  # Rule, Valid, Invalid, Option: loaded on first use (a cached run needs none)
    if name in ("Rule", "Valid", "Invalid", "Option"):
        from ckptlint.rules import _base

        return getattr(_base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
