"""CKPT002/CKPT003 on a load whose checkpoint file is at hand: say what `weights_only=True`
needs for that very file, and when it needs only reviewed data types, write the exact
`with torch.serialization.safe_globals([...]):` around the load (the torch 2.6 migration).

Never a fix that allows a global which runs code: such a file gets a message (re-save it)."""

from __future__ import annotations

import io
import tokenize
from typing import Optional

import libcst as cst

from ckptlint.diagnostic import Edit


def advice(ctx, call, known, call_edit: Edit):
    """(message tail, edits or None) for a load of the known file; `call_edit` is the edit
    that makes the call pass `weights_only=True`."""
    if known.code:
        return (f"`{known.shown}` (read by ckptlint, not run) {_does(known)} on load: "
                "`weights_only=True` refuses it and `weights_only=False` runs that code; re-save it "
                "as a state dict from trusted code (`torch.save(model.state_dict(), ...)`)"), None
    if not known.data:
        return (f"`{known.shown}` holds only tensors and plain containers (read by ckptlint): "
                "`weights_only=True` loads it"), [call_edit]
    names = ", ".join(f"`{n}`" for n in known.data)
    wrapped = _wrap(ctx, call, known, call_edit)
    where = (f"load it with `weights_only=True` inside `with {known.safe_globals_call()}:`")
    return (f"`{known.shown}` needs only reviewed data types allowed ({names}; read by ckptlint): "
            f"{where}"), ([wrapped] if wrapped is not None else None)


def _does(known) -> str:
    from ckptlint.reader.verdict import what_it_does

    return what_it_does(list(known.code), dict(known.uses))


def _wrap(ctx, call, known, call_edit: Edit) -> Optional[Edit]:
    """One edit that puts the statement holding the load (with `call_edit` applied) inside
    `with torch.serialization.safe_globals([...]):`, importing what the list names. None
    where that is not a plain rewrite: the load is in a compound statement's header, or the
    statement holds a string spanning lines (indenting it would change the string)."""
    stmt = ctx.parent(call)
    while stmt is not None and not isinstance(stmt, cst.SimpleStatementLine):
        if isinstance(stmt, cst.BaseCompoundStatement):
            return None
        stmt = ctx.parent(stmt)
    if stmt is None:
        return None
    first = ctx.start(stmt).row
    begin = ctx.offset(ctx.start(stmt)) - (ctx.start(stmt).column - 1)
    end = ctx.offset(ctx.end(stmt))
    text = ctx.text[begin:end]
    if text[: ctx.start(stmt).column - 1].strip() or _multiline_string(text):
        return None
    rel_start, rel_end = ctx.offset(call_edit.start) - begin, ctx.offset(call_edit.end) - begin
    text = text[:rel_start] + call_edit.content + text[rel_end:]
    indent = text[: len(text) - len(text.lstrip(" \t"))]
    unit = "\t" if indent.startswith("\t") else "    "
    newline = ctx.lines.newline(first)
    lines = text.split(newline)
    body = newline.join(unit + line if line.strip() else line for line in lines)
    torch = _bound_module(ctx, "torch")
    imports = [m for m in known.modules() if not _bound_module(ctx, m)]
    if not torch:
        imports.insert(0, "torch")
    head = "".join(f"{indent}import {m}{newline}" for m in imports)
    head += f"{indent}with {known.safe_globals_call()}:{newline}"
    return Edit(ctx.lines.location(begin), ctx.lines.location(end), head + body)


def _multiline_string(text: str) -> bool:
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text.lstrip()).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return True
    return any(t.type == tokenize.STRING and t.start[0] != t.end[0] for t in tokens)


def _bound_module(ctx, name: str) -> bool:
    """`import name` at the module's top level binds `name` to that module."""
    for stmt in ctx.module.body:
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                if isinstance(small, cst.Import):
                    for alias in small.names:
                        if alias.asname is None and ctx.code(alias.name) == name:
                            return True
    return False

