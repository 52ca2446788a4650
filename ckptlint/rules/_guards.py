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


# A name that counts training progress: `epoch`, `global_step`, `num_epochs`, `max_iter`,
# `epoch_idx` (whole names: `epoch_and_values` or `nbest_epochs` are lists, not counters).
_COUNTER = re.compile(
    r"^(?:[a-z0-9]+_)*(?:epoch|step|iter|iteration|it|itr)s?(?:_(?:idx|id|i|num|no|count))?$", re.IGNORECASE)
_TRAINING_BODY = re.compile(r"\.backward\(|optim\w*\.step\(|scheduler\.step\(|train_one_epoch|train_step")


def _names_in(node):
    if isinstance(node, cst.Name):
        yield node.value
    elif isinstance(node, cst.Attribute):
        yield node.attr.value
    for child in node.children:
        yield from _names_in(child)


def _counts_progress(ctx, loop) -> bool:
    """The loop's header counts epochs/steps: `for epoch in range(...)`, `for it in
    range(max_iter)`, `while global_step < total_steps`; a loop over a list does not count
    through the list's name (`for e in nbest_epochs`)."""
    if isinstance(loop, cst.While):
        return any(_COUNTER.match(n) for n in _names_in(loop.test))
    if any(_COUNTER.match(n) for n in _names_in(loop.target)):
        return True
    return isinstance(loop.iter, cst.Call) and any(
        _COUNTER.match(n) for a in loop.iter.args for n in _names_in(a.value))


def in_training_loop(ctx, node) -> bool:
    """Inside a loop that looks like training: its header counts epochs/steps/iterations, or
    its body calls `.backward()` / `optimizer.step()` (loops over files, adapters, retries,
    checkpoints to average are not training loops)."""
    p = ctx.parent(node)
    while p is not None and not isinstance(p, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
        if isinstance(p, (cst.For, cst.While)) and (_counts_progress(ctx, p) or _TRAINING_BODY.search(ctx.code(p.body))):
            return True
        p = ctx.parent(p)
    return False


def writes_to_buffer(ctx, f) -> bool:
    """`torch.save(obj, buf)` into an in-memory `io.BytesIO()` writes no file."""
    if isinstance(f, cst.Name):
        binds, _ = ctx.values.bindings(f)
        for b in binds:
            if isinstance(b.value, cst.Call) and ctx.call_qname(b.value) in ("io.BytesIO", "_io.BytesIO"):
                return True
    return isinstance(f, cst.Call) and ctx.call_qname(f) in ("io.BytesIO", "_io.BytesIO")


def reads_buffer(ctx, call: cst.Call) -> bool:
    """`torch.load(io.BytesIO(...))`, directly or through a name bound to one: bytes passed
    between processes of one job, not a file from another machine."""
    if not call.args or call.args[0].keyword is not None:
        return False
    expr = call.args[0].value
    if isinstance(expr, cst.Name):
        binding = ctx.names.binding(expr)
        expr = binding.value if binding is not None and binding.kind == "assign" else None
    return isinstance(expr, cst.Call) and ctx.call_qname(expr) in ("io.BytesIO", "_io.BytesIO")


def round_trip(ctx, load: cst.Call) -> bool:
    """A load of an in-memory buffer in a function that also `torch.save`s into one: the
    function moves its own objects between processes (`broadcast(obj)` of any picklable),
    not a checkpoint from elsewhere."""
    if not reads_buffer(ctx, load):
        return False
    fn = enclosing_function(ctx, load)
    for save in ctx.calls_to("torch.save"):
        f = save.args[1].value if len(save.args) > 1 and save.args[1].keyword is None else None
        if f is not None and writes_to_buffer(ctx, f) and enclosing_function(ctx, save) is fn:
            return True
    return False


def within(ctx, node, ancestor) -> bool:
    """Is `node` inside `ancestor`, in the same function?"""
    p = node
    while p is not None:
        if p is ancestor:
            return True
        if isinstance(p, (cst.FunctionDef, cst.Lambda, cst.ClassDef)) and p is not node:
            return False
        p = ctx.parent(p)
    return False


def handler_of(ctx, node):
    """(the `except` clause holding node, its `try`) in the same function, else (None, None)."""
    p = ctx.parent(node)
    while p is not None and not isinstance(p, (cst.FunctionDef, cst.Lambda, cst.ClassDef, cst.Module)):
        if isinstance(p, cst.ExceptHandler) or type(p).__name__ == "ExceptStarHandler":
            return p, ctx.parent(p)
        p = ctx.parent(p)
    return None, None


def old_torch_fallback(ctx, load: cst.Call):
    """The line of the `torch.load(..., weights_only=...)` whose `except TypeError` this load
    is in: the retry for a torch that has no `weights_only` keyword. Else None."""
    from ckptlint.analysis.calls import find_arg

    handler, try_node = handler_of(ctx, load)
    if handler is None or handler.type is None or "TypeError" not in ctx.code(handler.type):
        return None
    for other in ctx.calls_to("torch.load"):
        if other is not load and find_arg(other, "weights_only") is not None and any(
                within(ctx, other, stmt) for stmt in try_node.body.body):
            return ctx.start(other).row
    return None


def _callee_name(call: cst.Call):
    if isinstance(call.func, cst.Name):
        return call.func.value
    if isinstance(call.func, cst.Attribute):
        return call.func.attr.value
    return None


def reachable_functions(ctx, starts):
    """Functions of this file reachable by name from the functions holding `starts` (calls);
    None when a start is at module level (everything may run after it)."""
    by_name = {}
    for fn in ctx.nodes(cst.FunctionDef):
        by_name.setdefault(fn.name.value, []).append(fn)
    calls_in = {}
    for call in ctx.calls:
        fn = enclosing_function(ctx, call)
        name = _callee_name(call)
        if fn is not None and name in by_name:
            calls_in.setdefault(fn, []).append(name)
    todo = []
    for s in starts:
        fn = enclosing_function(ctx, s)
        if fn is None:
            return None
        todo.append(fn)
    seen = []
    while todo:
        fn = todo.pop()
        if any(fn is x for x in seen):
            continue
        seen.append(fn)
        for name in calls_in.get(fn, ()):
            todo.extend(by_name[name])
    return seen


def callers_guarded(ctx, fn) -> bool:
    """Every call of `fn` (by name, in this file) is under a rank test: `if rank == 0:
    self.save_model()` guards the save inside it."""
    sites = [c for c in ctx.calls if _callee_name(c) == fn.name.value and enclosing_function(ctx, c) is not fn]
    return bool(sites) and all(rank_guarded(ctx, c) for c in sites)
