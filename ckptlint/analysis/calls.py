"""Which argument of a call is which, however it is passed."""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import libcst as cst

# Positional parameter names, in order, up to the first keyword-only parameter.
# (weights_only of torch.load is keyword-only; it can never be positional.)
POSITIONAL = {
    "torch.load": ("f", "map_location", "pickle_module"),
    "torch.save": ("obj", "f", "pickle_module", "pickle_protocol", "_use_new_zipfile_serialization"),
    "torch.hub.load_state_dict_from_url": (
        "url", "model_dir", "map_location", "progress", "check_hash", "file_name", "weights_only",
    ),
    "load_state_dict": ("state_dict", "strict", "assign"),
}

MAYBE = object()  # the argument may be given through *args / **kwargs: unknown


def has_double_star(call: cst.Call) -> bool:
    return any(a.star == "**" for a in call.args)


def find_arg(call: cst.Call, name: str, positional: Sequence[str] = ()):
    """The Arg passing ``name``; None when absent; MAYBE when *args/**kwargs could hold it."""
    for a in call.args:
        if a.keyword is not None and a.keyword.value == name:
            return a
    index = positional.index(name) if name in positional else None
    pos = 0
    for a in call.args:
        if a.keyword is not None or a.star == "**":
            continue
        if a.star == "*":
            if index is not None and pos <= index:
                return MAYBE
            continue
        if index is not None and pos == index:
            return a
        pos += 1
    if has_double_star(call):
        return MAYBE
    return None


def is_literal(expr: Optional[cst.BaseExpression], value: str) -> bool:
    """`False`, `True`, `None` written out."""
    return isinstance(expr, cst.Name) and expr.value == value


def string_value(expr) -> Optional[str]:
    """The value of a plain (non-f) string literal, else None."""
    if isinstance(expr, (cst.SimpleString, cst.ConcatenatedString)):
        try:
            value = expr.evaluated_value
        except Exception:  # pragma: no cover - defensive
            return None
        return value if isinstance(value, str) else None
    return None


def method_call(call: cst.Call) -> Tuple[Optional[cst.BaseExpression], Optional[str]]:
    """(receiver, method name) for `x.meth(...)`, else (None, None)."""
    if isinstance(call.func, cst.Attribute):
        return call.func.value, call.func.attr.value
    return None, None
