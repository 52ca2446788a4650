"""What a rule is: metadata, docs, self-tests (Fixit style) and a check.

A rule module under ``ckptlint/rules/`` defines one subclass of :class:`Rule`. The registry
finds it; the tests, ``ckptlint rule CODE`` and docs/rules/ all read the same class, so a rule
documents and tests itself.
"""

from __future__ import annotations

import re
import textwrap
import types
from dataclasses import dataclass
from typing import Any, ClassVar, Iterable, Mapping, Optional, Tuple, Union

from ckptlint.diagnostic import Diagnostic, fit_headline

SECTIONS = ("What it does", "Why is this bad?", "Example", "Use instead", "Fix safety")


@dataclass(frozen=True)
class Valid:
    """Code that must not fire."""

    code: str
    config: Optional[dict] = None  # [tool.ckptlint] overrides for this example

    @property
    def source(self) -> str:
        return textwrap.dedent(self.code).lstrip("\n")


@dataclass(frozen=True)
class Invalid:
    """Code that must fire once per ``count``; ``fixed`` is the code after the rule's fix
    (applied with --unsafe-fixes when the fix is unsafe). ``fixed=None`` means no fix.
    ``message`` is the whole headline and ``help`` the whole help text, both shown in the
    rule's docs: give them where what the finding says is what the example is about (the
    same code under another config says something else). ``message_contains`` and
    ``help_contains`` check a part of either."""

    code: str
    fixed: Optional[str] = None
    count: int = 1
    message_contains: Optional[str] = None
    config: Optional[dict] = None
    message: Optional[str] = None
    help: Optional[str] = None
    help_contains: Optional[str] = None

    @property
    def source(self) -> str:
        return textwrap.dedent(self.code).lstrip("\n")

    @property
    def fixed_source(self) -> Optional[str]:
        return None if self.fixed is None else textwrap.dedent(self.fixed).lstrip("\n")


# an option's kind -> (what a config error says it must be, the test a value passes)
_KINDS = {
    bool: ("a boolean", lambda v: isinstance(v, bool)),
    int: ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    float: ("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)),
    str: ("a string", lambda v: isinstance(v, str)),
    list: ("a list of strings", lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v)),
}
_OPTION_NAME = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")


@dataclass(frozen=True)
class Option:
    """One key of `[tool.ckptlint.rule-options.CODE]` that a rule reads as `ctx.options[name]`:
    its default (a bool, int, float, str or list of strings: the kind a value must have) and
    what it does (one or two sentences, shown on the rule's page)."""

    default: Any
    doc: str

    def __post_init__(self) -> None:
        _kind_of(self.default)

    @property
    def kind(self) -> str:
        return _KINDS[_kind_of(self.default)][0]

    def accepts(self, value: object) -> bool:
        return bool(_KINDS[_kind_of(self.default)][1](value))


def _kind_of(default: object) -> type:
    for kind in (bool, int, float, str, list):  # bool before int: True is an int too
        if isinstance(default, kind):
            return kind
    raise TypeError(f"an option's default must be a bool, int, float, str or list of strings, "
                    f"not {type(default).__name__}")


class Rule:
    code: ClassVar[str]
    name: ClassVar[str]
    summary: ClassVar[str]
    # "safe", "unsafe" or "none"; "sometimes" when it depends on the call (documented in docs)
    fix_safety: ClassVar[str] = "none"
    fix_title: ClassVar[Optional[str]] = None
    # "always", or "sometimes" when some findings come without a fix (ruff's FixAvailability)
    fix_availability: ClassVar[str] = "always"
    # "static" rules check source; "runtime" rules check checkpoint files (ckptlint verify)
    phase: ClassVar[str] = "static"
    default_enabled: ClassVar[bool] = True
    # security rules are tagged so in SARIF (with a security-severity)
    security_severity: ClassVar[Optional[str]] = None
    # the level of its findings ("error" or "warning"); a rule some of whose findings are
    # milder, in a case its docs name, gives the pair (level, milder level)
    levels: ClassVar[Tuple[str, ...]] = ("error",)
    # where a plugin's rule is documented (ckptlint's own: docs/rules/CODE.md)
    docs_url: ClassVar[Optional[str]] = None
    # --- what the rule fires on: the engine derives from it which files skip the rule ------
    # (engine/triage.py: text tests before any parse, then one walk of the stdlib AST; always
    # conservative, so a file is skipped only where the rule provably cannot fire)
    #
    # The canonical qualified names of the calls the rule fires on: what it asks
    # `ctx.calls_to(...)` for. The identifiers and packages a file must spell for them (every
    # spelling in analysis/qnames.CANONICAL included) are derived, so a file without
    # `torch.load` skips a rule on `torch.load` (and `from torch.utils.cpp_extension import
    # load` does not keep it).
    qualnames: ClassVar[Tuple[str, ...]] = ()
    # Or, for a rule that fires on a spelling whatever it resolves to (`m.load_state_dict(...)`
    # on any `m`): identifiers one of which the code must spell (a name, attribute, import or
    # keyword), and with `modules` only as `R.x.name` where R may be an import of one of those
    # packages. Leave all three empty when the rule can fire through names of another file.
    names: ClassVar[Tuple[str, ...]] = ()
    modules: ClassVar[Tuple[str, ...]] = ()
    # Text the file must also contain, any one of them: a keyword the rule reads
    # (`weights_only`), a string it looks for. Plain substrings, or compiled regexes that
    # start with a literal (one big alternation is far slower) for what a substring cannot
    # say (`k[ 7 :]` with any spacing).
    requires_text: ClassVar[Tuple[Union[str, "re.Pattern"], ...]] = ()
    # Last resort, for what none of the above says: the rule runs on a file only when `probe`
    # says yes to one of its stdlib `ast` nodes of these types (conservatively).
    probe_types: ClassVar[Tuple[type, ...]] = ()

    @staticmethod
    def probe(node) -> bool:
        return True

    # Derived from the above (never set by a rule): one of these must occur in the text.
    text_triggers: ClassVar[Tuple[str, ...]] = ()
    text_patterns: ClassVar[Tuple["re.Pattern", ...]] = ()

    # What `[tool.ckptlint.rule-options.CODE]` may set, by name (kebab-case, as config keys
    # are): read with `ctx.options[name]`; the config is checked against it when it is read.
    # Options narrow or tune what the rule reports; what the rule fires on (above) stays what
    # decides which files it runs on.
    options: ClassVar[Mapping[str, Option]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name, option in cls.options.items():
            if not _OPTION_NAME.fullmatch(name) or not isinstance(option, Option):
                raise TypeError(f"{cls.__name__}.options: `{name}` must be a kebab-case name mapped to an Option")
            if not option.accepts(option.default):
                raise TypeError(f"{cls.__name__}.options: the default of `{name}` must be {option.kind}")
        if cls.qualnames and not (cls.names or cls.modules):
            from ckptlint.analysis.qnames import spellings

            every = [q for qn in cls.qualnames for q in spellings(qn)]
            cls.names = tuple(dict.fromkeys(q.rsplit(".", 1)[-1] for q in every))
            cls.modules = tuple(dict.fromkeys(q.split(".", 1)[0] for q in every))
        # a name the code must spell is in its text; text it must also contain says more
        needs = cls.requires_text or cls.names
        cls.text_triggers = tuple(t for t in needs if isinstance(t, str))
        cls.text_patterns = tuple(t for t in needs if not isinstance(t, str))

    # Markdown with the sections in SECTIONS, each introduced by "## <section>".
    docs: ClassVar[str] = ""
    valid: ClassVar[Tuple[Valid, ...]] = ()
    invalid: ClassVar[Tuple[Invalid, ...]] = ()

    def check(self, ctx) -> Iterable:  # pragma: no cover - overridden by static rules
        return ()

    @classmethod
    def doc_text(cls) -> str:
        return textwrap.dedent(cls.docs).strip() + "\n"

    @classmethod
    def options_in(cls, settings) -> Mapping[str, Any]:
        """The rule's options under `settings`: each declared default, overridden by what
        `[tool.ckptlint.rule-options.CODE]` sets (validated when the config was read)."""
        given = (getattr(settings, "rule_options", None) or {}).get(cls.code, {})
        return types.MappingProxyType({name: given.get(name, o.default) for name, o in cls.options.items()})

    @classmethod
    def severity(cls, milder: bool = False) -> str:
        """The level of a finding; ``milder`` for the case the rule's ``levels`` pair is for."""
        if milder and len(cls.levels) < 2:
            raise ValueError(f"{cls.code} has no milder level")
        return cls.levels[1] if milder else cls.levels[0]

    @classmethod
    def finding(cls, message: str, filename: str, key: Optional[str] = None, *,
                milder: bool = False, help: Optional[str] = None) -> Diagnostic:
        """A finding of a runtime rule on a checkpoint file (``key``: the state-dict key it is
        about): code, name and level are the rule's; ``message`` the headline, ``help`` the why
        and the how, as for FileContext.report."""
        if cls.phase != "runtime":
            raise TypeError(f"{cls.code} is a static rule: its findings come from FileContext.report")
        message, help = fit_headline(message, help)
        return Diagnostic(code=cls.code, name=cls.name, message=message, filename=filename, key=key,
                          is_runtime=True, severity=cls.severity(milder), help=help)
