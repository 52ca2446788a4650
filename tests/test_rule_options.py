"""What a rule may declare as options (`Rule.options`), how the config is checked against
them, and what a rule reads (`ctx.options`). End to end with a plugin: tests/test_plugins.py."""

from __future__ import annotations

import pytest

from ckptlint.errors import ConfigError
from ckptlint.rules import Option, Rule
from tests.helpers import settings


def test_a_rule_declares_kebab_case_options_with_plain_defaults():
    with pytest.raises(TypeError, match="kebab-case"):
        type("Bad", (Rule,), {"code": "X1", "options": {"max_depth": Option(3, "How deep.")}})
    with pytest.raises(TypeError, match="must be a list of strings"):
        type("Bad", (Rule,), {"code": "X1", "options": {"names": Option(["a", 1], "Names.")}})
    with pytest.raises(TypeError, match="must be a bool, int, float, str or list"):
        Option({"a": 1}, "A table.")


@pytest.mark.parametrize("default,good,bad", [
    (True, False, 1), (3, 4, True), (0.5, 2, "0.5"), ("x", "y", ["y"]), ([], ["a"], "a"),
])
def test_a_value_must_have_the_kind_of_the_default(default, good, bad):
    option = Option(default, "doc")
    assert option.accepts(good) and not option.accepts(bad)


def test_options_in_fills_the_defaults_in():
    class Deep(Rule):
        code = "CKPT9901"
        options = {"max-depth": Option(3, "How deep."), "names": Option(["a"], "Names.")}

    s = settings()
    assert dict(Deep.options_in(s)) == {"max-depth": 3, "names": ["a"]}
    s.rule_options = {"CKPT9901": {"max-depth": 5}}
    assert dict(Deep.options_in(s)) == {"max-depth": 5, "names": ["a"]}


@pytest.mark.parametrize("table,key,says", [
    ({"CKPT999": {"x": 1}}, "rule-options.CKPT999", "no rule has this code"),
    ({"ckpt001": {}}, "rule-options.ckpt001", "no rule has this code"),
    ({"CKPT001": {"x": 1}}, "rule-options.CKPT001.x", "CKPT001 has no option `x` (its options: none)"),
    ({"CKPT001": 1}, "rule-options", "must be a table of tables"),
])
def test_a_wrong_rule_option_is_a_config_error_naming_the_key(table, key, says):
    with pytest.raises(ConfigError) as err:
        settings({"rule-options": table})
    assert err.value.key == key and says in str(err.value)
