"""What a `torch.save` call saves, for CKPT001 / CKPT005 / CKPT015 / CKPT051: the object argument and
the expressions inside it (the values of a dict or list literal)."""

from __future__ import annotations

import re
from typing import Iterator, List, Optional, Tuple

import libcst as cst

from ckptlint.analysis.calls import POSITIONAL, find_arg, method_call, string_value


# Spellings of a state dict rather than a module (`model_sd`, `ema_state`, `weights`).
STATEY = re.compile(r"state|\bsd\b|_sd\b|weights|params", re.IGNORECASE)


def dict_key(ctx, value: cst.BaseExpression) -> Optional[str]:
    """The key of a dict literal entry (`{"ema": value}`, `dict(ema=value)`), else None."""
    parent = ctx.parent(value)
    if isinstance(parent, cst.DictElement) and parent.value is value:
        return string_value(parent.key)
    if isinstance(parent, cst.Arg) and parent.keyword is not None:
        return parent.keyword.value
    return None


def saved_object(call: cst.Call) -> Optional[cst.BaseExpression]:
    arg = find_arg(call, "obj", POSITIONAL["torch.save"])
    return arg.value if isinstance(arg, cst.Arg) else None


def saved_parts(obj: cst.BaseExpression) -> List[cst.BaseExpression]:
    """The object itself, or the values of a dict / list / tuple literal (one level, plus
    nested literals)."""
    if isinstance(obj, cst.Dict):
        out: List[cst.BaseExpression] = []
        for el in obj.elements:
            if isinstance(el, cst.DictElement):
                out.extend(saved_parts(el.value))
        return out
    if isinstance(obj, (cst.List, cst.Tuple)):
        out = []
        for el in obj.elements:
            if isinstance(el, cst.Element):
                out.extend(saved_parts(el.value))
        return out
    return [obj]


def saved_values(ctx, obj: cst.BaseExpression) -> List[Tuple[cst.BaseExpression, object]]:
    """(expression, Value) for the saved object, or for each value of a dict / list it is
    (also one bound to a name first: `ckpt = {"model": model}; torch.save(ckpt, p)`)."""
    from ckptlint.analysis.kinds import DICT, LIST

    out: List[Tuple[cst.BaseExpression, object]] = []

    def walk(expr, value, depth):
        if value.kind in (DICT, LIST) and depth < 4:
            for e, v in value.elements:
                walk(e, v, depth + 1)
        else:
            out.append((expr, value))

    walk(obj, ctx.values.of(obj), 0)
    return out


def saved_calls(ctx, expr, unpacked: bool = False, depth: int = 0) -> Iterator[cst.Call]:
    """Each call whose result `expr` saves: the object itself or a value of a dict / list
    literal, also through a name bound to one (`sd = model.state_dict(); torch.save(sd, p)`);
    with `unpacked`, also a name unpacked from a call (`msd, osd = get_state_dict(m, o)`)."""
    if depth > 3:
        return
    for part in saved_parts(expr):
        if isinstance(part, cst.Call):
            yield part
        elif isinstance(part, cst.Name):
            binds, _ = ctx.values.bindings(part)
            if len(binds) != 1:
                continue
            if binds[0].kind == "assign" and binds[0].value is not None:
                yield from saved_calls(ctx, binds[0].value, unpacked, depth + 1)
            elif unpacked and binds[0].kind == "other":
                value = _unpacked_from(ctx, binds[0].node)
                if isinstance(value, cst.Call):
                    yield value


def _unpacked_from(ctx, target: cst.CSTNode) -> Optional[cst.BaseExpression]:
    """The right-hand side `target` is unpacked from in `a, b = value`."""
    p = ctx.parent(target)
    while isinstance(p, (cst.Element, cst.Tuple, cst.List)):
        p = ctx.parent(p)
    if isinstance(p, cst.AssignTarget):
        p = ctx.parent(p)
        return p.value if isinstance(p, cst.Assign) else None
    return None


def state_dict_calls(ctx, expr) -> Iterator[Tuple[cst.Call, cst.BaseExpression]]:
    """(`X.state_dict()` call, X) for each state dict saved in `expr`, also through a name
    bound to one (`sd = model.state_dict(); torch.save(sd, p)`)."""
    for call in saved_calls(ctx, expr):
        receiver, meth = method_call(call)
        if meth == "state_dict" and receiver is not None:
            yield call, receiver


def with_suffix(ctx, expr: cst.BaseExpression, suffix: str) -> str:
    """`expr` + `.state_dict()`, parenthesised when needed."""
    text = ctx.code(expr)
    if not isinstance(expr, (cst.Name, cst.Attribute, cst.Call, cst.Subscript)) or expr.lpar:
        if not expr.lpar:
            text = f"({text})"
    return text + suffix


def heuristic_note(value) -> str:
    if value.evidence == "name-heuristic":
        return " (`model-names` in [tool.ckptlint] sets the names; `false` switches this off)"
    return ""
