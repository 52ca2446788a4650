"""What a rule is: metadata, docs, self-tests (Fixit style) and a check.

A rule module under ``ckptlint/rules/`` defines one subclass of :class:`Rule`. The registry
finds it; the tests, ``ckptlint rule CODE`` and docs/rules/ all read the same class, so a rule
documents and tests itself.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from typing import ClassVar, Iterable, Optional, Tuple

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
    (applied with --unsafe-fixes when the fix is unsafe). ``fixed=None`` means no fix."""

    code: str
    fixed: Optional[str] = None
    count: int = 1
    message_contains: Optional[str] = None
    config: Optional[dict] = None

    @property
    def source(self) -> str:
        return textwrap.dedent(self.code).lstrip("\n")

    @property
    def fixed_source(self) -> Optional[str]:
        return None if self.fixed is None else textwrap.dedent(self.fixed).lstrip("\n")


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
    # Cheap text triggers: a file whose text contains none of them is never parsed for
    # this rule. Plain substrings; with no triggers and no patterns, every file is parsed.
    triggers: ClassVar[Tuple[str, ...]] = ()
    # Compiled regexes, each starting with a literal (one big alternation is far slower),
    # for what a substring cannot say (`k[ 7 :]` with any spacing).
    trigger_patterns: ClassVar[Tuple["re.Pattern", ...]] = ()
    # Identifiers one of which the code must spell (as a name, attribute, import or keyword)
    # for the rule to fire, e.g. ("load",) for a rule on `torch.load`. Files without one skip
    # the LibCST pass for this rule (see ckptlint/triage.py). Leave empty when the rule can
    # fire through names defined in another file; derived when `qualnames` is given.
    names: ClassVar[Tuple[str, ...]] = ()
    # Top-level packages one of which the module must import for the rule to fire (the
    # qualified names it looks for start there), e.g. ("torch",). Same use and caveat.
    modules: ClassVar[Tuple[str, ...]] = ()
    # The canonical qualified names the rule fires on (its `ctx.calls_to(...)`), for rules
    # that fire on nothing else. `names` and `modules` are then derived from them (every
    # spelling in analysis/qnames.CANONICAL included), and `from torch.utils.cpp_extension
    # import load` does not keep a rule on `torch.load`.
    qualnames: ClassVar[Tuple[str, ...]] = ()
    # stdlib `ast` node types for `probe`: the rule runs on a file only when `probe` says yes
    # to one of its nodes (a conservative test, so nothing the rule would report is lost).
    probe_types: ClassVar[Tuple[type, ...]] = ()

    @staticmethod
    def probe(node) -> bool:
        return True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.qualnames and not (cls.names or cls.modules):
            from ckptlint.analysis.qnames import spellings

            every = [q for qn in cls.qualnames for q in spellings(qn)]
            cls.names = tuple(dict.fromkeys(q.rsplit(".", 1)[-1] for q in every))
            cls.modules = tuple(dict.fromkeys(q.split(".", 1)[0] for q in every))
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
    def severity(cls) -> str:
        return "error"
