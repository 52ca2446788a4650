"""Rules: one module per rule; see _base.Rule. Discovered by ckptlint.registry."""

from ckptlint.rules._base import Invalid, Rule, Valid

__all__ = ["Rule", "Valid", "Invalid"]
