"""Rules: one module per rule (see _base.Rule), found by the registry (_registry.py): the
built-in modules of this package and the `ckptlint.rules` entry points of installed plugins."""

from ckptlint.rules._base import Invalid, Rule, Valid
from ckptlint.rules._registry import all_rules, get_rule, plugin_fingerprint

__all__ = ["Rule", "Valid", "Invalid", "all_rules", "get_rule", "plugin_fingerprint"]
