"""Every rule's own examples (Fixit style): must-fire, must-not-fire, and the fix result."""

from __future__ import annotations

import pytest

from ckptlint.diagnostic import HEADLINE
from ckptlint.rules import all_rules
from tests.helpers import check

STATIC = [r for r in all_rules().values() if r.phase == "static"]
VALID = [pytest.param(r, ex, id=f"{r.code}-valid-{i}") for r in STATIC for i, ex in enumerate(r.valid)]
INVALID = [pytest.param(r, ex, id=f"{r.code}-invalid-{i}") for r in STATIC for i, ex in enumerate(r.invalid)]


def test_every_static_rule_has_examples():
    for rule in STATIC:
        assert rule.valid, f"{rule.code} has no must-not-fire example"
        assert rule.invalid, f"{rule.code} has no must-fire example"


@pytest.mark.parametrize("rule,example", VALID)
def test_valid(rule, example):
    _, diags, _ = check(example.source, [rule.code], example.config)
    assert [d for d in diags if d.code == rule.code] == []
    assert not [d for d in diags if d.code.startswith("E9")], diags


@pytest.mark.parametrize("rule,example", INVALID)
def test_invalid(rule, example):
    _, diags, _ = check(example.source, [rule.code], example.config)
    assert not [d for d in diags if d.code.startswith("E9")], diags
    hits = [d for d in diags if d.code == rule.code]
    assert len(hits) == example.count, [d.message for d in diags]
    for d in hits:
        assert d.name == rule.name
        assert d.location is not None and d.end_location is not None
        # a headline a person scans (shared OUTPUT.md), composed by the rule, not cut after it
        assert len(d.message) <= HEADLINE and not d.message.endswith("…"), d.message
        assert d.help != d.message
        if example.message_contains:
            assert example.message_contains in d.message
        if example.message is not None:
            assert d.message == example.message
        if example.help_contains:
            assert example.help_contains in (d.help or ""), d.help
        if example.help is not None:
            assert d.help == example.help
    if example.fixed_source is None:
        assert all(d.fix is None for d in hits)
        return
    assert all(d.fix is not None for d in hits)
    unsafe = any(d.fix.applicability == "unsafe" for d in hits)
    fixed, remaining, applied = check(example.source, [rule.code], example.config, fix=True, unsafe=unsafe)
    assert fixed == example.fixed_source
    assert applied
    assert [d for d in remaining if d.code == rule.code and d.fix is not None] == []
    # a second run changes nothing
    again, _, applied_again = check(fixed, [rule.code], example.config, fix=True, unsafe=True)
    assert again == fixed and not applied_again


@pytest.mark.parametrize("rule,example", INVALID)
def test_safe_fix_only_without_unsafe_flag(rule, example):
    """Without --unsafe-fixes only safe fixes are applied."""
    fixed, _, applied = check(example.source, [rule.code], example.config, fix=True, unsafe=False)
    assert all(d.fix.applicability == "safe" for d in applied)
    if not applied:
        assert fixed == example.source


def test_fix_availability_matches_the_examples():
    """`fix_availability = "sometimes"` exactly when some must-fire example has no fix."""
    for rule in STATIC:
        if rule.fix_safety == "none":
            assert all(ex.fixed is None for ex in rule.invalid), rule.code
            continue
        without = [ex for ex in rule.invalid if ex.fixed is None]
        expected = "sometimes" if without else "always"
        assert rule.fix_availability == expected, f"{rule.code}: {len(without)} examples without a fix"


def test_the_rule_index_is_the_rule_table():
    """What selection reads without importing the rule modules (registry.rule_index) says
    what the rule classes say."""
    from ckptlint.rules import all_rules, rule_index

    assert dict(rule_index()) == {code: rule.default_enabled for code, rule in all_rules().items()}
