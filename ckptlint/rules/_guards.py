"""Where a statement sits: in a loop, under a rank-0 guard (for the opt-in CKPT050/052)."""

from __future__ import annotations

import re
from typing import Optional

import libcst as cst

RANK_TEST = re.compile(
    r"rank|main_process|is_main|master|is_primary|process_index|is_world_process_zero",
    re.IGNORECASE,
)


def enclosing_function(ctx, node) -> Optional[cst.FunctionDef]:
    p = ctx.parent(node)
    while p is not None and not isinstance(p, cst.FunctionDef):
        p = ctx.parent(p)
    return p


def in_loop(ctx, node) -> bool:
    p = ctx.parent(node)
    while p is not None and not isinstance(p, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
        if isinstance(p, (cst.For, cst.While)):
            return True
        p = ctx.parent(p)
    return False


def rank_guarded(ctx, node) -> bool:
    """Under `if rank == 0:`-like tests, in a function decorated `@rank_zero_only`, after an
    early `if rank != 0: return`, or in a function whose name says it (`save_on_master`)."""
    p, child = ctx.parent(node), node
    while p is not None:
        if isinstance(p, (cst.If, cst.IfExp, cst.While)) and child is not p.test and RANK_TEST.search(ctx.code(p.test)):
            return True
        if isinstance(p, cst.FunctionDef):
            if RANK_TEST.search(p.name.value) or any(
                RANK_TEST.search(ctx.code(d.decorator)) or "rank_zero" in ctx.code(d.decorator) for d in p.decorators
            ):
                return True
            if _early_return(ctx, p, node):
                return True
        child, p = p, ctx.parent(p)
    return False


def _early_return(ctx, fn: cst.FunctionDef, node) -> bool:
    body = fn.body.body if isinstance(fn.body, cst.IndentedBlock) else ()
    for stmt in body:
        if isinstance(stmt, cst.If) and RANK_TEST.search(ctx.code(stmt.test)):
            inner = stmt.body.body if isinstance(stmt.body, cst.IndentedBlock) else stmt.body.body
            for s in inner:
                small = s.body if isinstance(s, cst.SimpleStatementLine) else ()
                if any(isinstance(x, cst.Return) for x in small):
                    return True
    return False
