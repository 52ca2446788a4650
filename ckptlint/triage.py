"""Cheap tests that decide which files (and which rules) need the LibCST pass.

Everything here is conservative: a rule is dropped for a file only when it provably cannot
fire there, so diagnostics and fixes are the same with and without triage
(tests/test_triage.py checks that on every rule example and more).

1. The syntax check runs on every file (syntax errors are reported everywhere). The stdlib
   `symtable` runs CPython's parser without building Python AST objects, about twice as fast
   as `ast.parse`; only a file it rejects goes through `ast.parse` for the exact verdict.
2. Text triggers: plain substring tests (`Rule.triggers`).
3. Names: a rule that declares `Rule.names` fires only on a call or name that spells one of
   those identifiers; a whole-word text scan, then a walk of the stdlib AST (comments and
   strings do not count), decide whether one occurs.
"""

from __future__ import annotations

import ast
from typing import Iterable, List, Optional, Set


def syntax_ok(text: str, path: str) -> bool:
    """True when the text surely parses (ast.parse would accept it). False means: ask ast."""
    import symtable

    try:
        symtable.symtable(text, path, "exec")
    except Exception:  # SyntaxError, and symtable-only errors ast.parse does not raise
        return False
    except (RecursionError, MemoryError):  # pragma: no cover - RecursionError is an Exception
        return False
    return True


def by_triggers(text: str, rules: Iterable) -> list:
    """Rules with no triggers, or one of whose triggers occurs in the text."""
    return [r for r in rules if not r.triggers or any(t in text for t in r.triggers)]


def _ident_char(c: str) -> bool:
    # Non-ASCII counts as a boundary: that only keeps more files, never fewer.
    return c == "_" or (c.isascii() and c.isalnum())


def has_word(text: str, word: str) -> bool:
    """`word` occurs with no identifier character right before or after it."""
    n = len(word)
    i = text.find(word)
    while i >= 0:
        if (i == 0 or not _ident_char(text[i - 1])) and (i + n >= len(text) or not _ident_char(text[i + n])):
            return True
        i = text.find(word, i + 1)
    return False


def identifiers(tree: ast.AST) -> Set[str]:
    """Every identifier the code spells: names, attributes, imports, keywords, definitions."""
    out: Set[str] = set()
    add = out.add
    for node in ast.walk(tree):
        t = type(node)
        if t is ast.Name:
            add(node.id)
        elif t is ast.Attribute:
            add(node.attr)
        elif t is ast.alias:
            out.update(node.name.split("."))
            if node.asname:
                add(node.asname)
        elif t is ast.keyword:
            if node.arg:
                add(node.arg)
        elif t is ast.ImportFrom:
            if node.module:
                out.update(node.module.split("."))
        elif t in (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef):
            add(node.name)
        elif t is ast.arg:
            add(node.arg)
    return out


def by_names(text: str, rules: list, path: str = "<unknown>", tree: Optional[ast.AST] = None) -> list:
    """Drop the rules whose `names` the code never spells. Rules without `names` stay."""
    named = [r for r in rules if r.names]
    if not named:
        return rules
    words = {w for r in named for w in r.names}
    present = {w for w in words if has_word(text, w)}
    if present:
        if tree is None:
            try:
                tree = ast.parse(text, filename=path)
            except Exception:  # the caller reports syntax errors; keep every rule
                return rules
        present &= identifiers(tree)
    return [r for r in rules if not r.names or present.intersection(r.names)]


def active_rules(text: str, rules: list, path: str = "<unknown>") -> List:
    return by_names(text, by_triggers(text, rules), path)
