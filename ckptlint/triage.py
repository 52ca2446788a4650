"""Cheap tests that decide which files (and which rules) need the LibCST pass.

Everything here is conservative: a rule is dropped for a file only when it provably cannot
fire there, so diagnostics and fixes are the same with and without triage
(tests/test_triage.py checks that on every rule example and more).

1. The syntax check runs on every file (syntax errors are reported everywhere). The stdlib
   `symtable` runs CPython's parser without building Python AST objects, about twice as fast
   as `ast.parse`; only a file it rejects goes through `ast.parse` for the exact verdict.
2. Text triggers: plain substring tests (`Rule.triggers`).
3. Names and modules: a rule that declares `Rule.names` fires only where the code spells
   one of those identifiers as an attribute or an imported name, and one that declares
   `Rule.modules` only in a module that imports one of those packages. A text scan that
   keeps every place code could spell them, then a walk of the stdlib AST (comments and
   strings do not count), decide.
"""

from __future__ import annotations

import ast
from typing import Iterable, List, Optional, Set, Tuple


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


def identifiers(tree: ast.AST, module_name: Optional[str] = None) -> Tuple[Set[str], Set[str]]:
    """(every identifier the code spells: names, attributes, imports, keywords, definitions;
    the top-level packages it imports from, a relative import counting as its own), in one
    walk."""
    out: Set[str] = set()
    packages: Set[str] = set()
    own = (module_name or "").split(".")[0]
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
        elif t is ast.Import:
            packages.update(a.name.split(".")[0] for a in node.names)
        elif t is ast.ImportFrom:
            if node.module:
                out.update(node.module.split("."))
            if node.level:
                if own:
                    packages.add(own)
            elif node.module:
                packages.add(node.module.split(".")[0])
        elif t in (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef):
            add(node.name)
        elif t is ast.arg:
            add(node.arg)
    return out, packages


_SPACE = " \t\f\r\n\\"


def _could_be_name_use(text: str, i: int) -> bool:
    """May the identifier at text[i:] be an attribute (`x.load`) or an imported name
    (`from m import a, load`)? Those are the only spellings a qualified name can come from
    (a bare `load` resolves only through such an import or an `x = m.load` alias). Looks
    back over spaces and line continuations; when that crosses into a line with a `#`,
    it cannot tell a comment apart and says yes."""
    j = i - 1
    while j >= 0 and text[j] in _SPACE:
        if text[j] == "\n":
            line_start = text.rfind("\n", 0, j) + 1
            if "#" in text[line_start:j]:
                return True
        j -= 1
    if j < 0:
        return False
    if text[j] in ".,(":
        return True
    return text.endswith("import", 0, j + 1) and (j < 6 or not _ident_char(text[j - 6]))


def uses_name(text: str, word: str) -> bool:
    """`word` occurs as a whole word in a place where code could spell an attribute or an
    imported name. Comments and prose mostly fail this; code that uses `word` never does."""
    n = len(word)
    i = text.find(word)
    while i >= 0:
        if ((i == 0 or not _ident_char(text[i - 1]))
                and (i + n >= len(text) or not _ident_char(text[i + n]))
                and _could_be_name_use(text, i)):
            return True
        i = text.find(word, i + 1)
    return False


def _could_import(text: str, packages, module_name: Optional[str]) -> bool:
    own = (module_name or "").split(".")[0]
    return own in packages or any(has_word(text, p) for p in packages)


def by_names(text: str, rules: list, path: str = "<unknown>", module_name: Optional[str] = None) -> list:
    """Drop the rules whose `names` the code never spells, or whose `modules` it never
    imports. Rules without them stay."""
    named = [r for r in rules if r.names or r.modules]
    if not named:
        return rules
    words = {w for r in named for w in r.names}
    present = {w for w in words if uses_name(text, w)}
    candidates = [r for r in named if (not r.names or present.intersection(r.names))
                  and (not r.modules or _could_import(text, r.modules, module_name))]
    packages: Set[str] = set()
    if candidates:
        try:
            tree = ast.parse(text, filename=path)
        except Exception:  # the caller reports syntax errors; keep every rule
            return rules
        spelled, packages = identifiers(tree, module_name)
        present &= spelled
    keep = {id(r) for r in candidates if (not r.names or present.intersection(r.names))
            and (not r.modules or packages.intersection(r.modules))}
    return [r for r in rules if not (r.names or r.modules) or id(r) in keep]


def active_rules(text: str, rules: list, path: str = "<unknown>", module_name: Optional[str] = None) -> List:
    return by_names(text, by_triggers(text, rules), path, module_name)
