from __future__ import annotations

from typing import List, Optional

import libcst as cst

from ckptlint.analysis.calls import POSITIONAL, find_arg, is_literal, method_call
from ckptlint.rules._base import Invalid, Rule, Valid
from ckptlint.rules._shared import quoted_code


def _target_names(target) -> List[cst.Name]:
    if isinstance(target, cst.Name):
        return [target]
    if isinstance(target, (cst.Tuple, cst.List)):
        out = []
        for el in target.elements:
            out.extend(_target_names(el.value))
        return out
    if isinstance(target, cst.StarredElement):
        return _target_names(target.value)
    return []


def _read_later(ctx, target: cst.Name) -> bool:
    """Is the name bound at `target` read afterwards in its scope (or a nested one)? Any later
    read counts, whichever binding it sees: `r = ... strict=False` in both branches of an
    `if` and one `return r` after them checks both."""
    scope = ctx.scope_of(target)
    after = ctx.order(target)
    for name in ctx.names_spelled(target.value):
        if ctx.order(name) <= after:
            continue
        if not scope.encloses(ctx.scope_of(name)):
            continue
        b = ctx.binding_of(name)
        if b is not None and b.node is name:
            continue  # a target of a later assignment, not a read
        return True
    return False


def unchecked(ctx, call: cst.Call) -> Optional[str]:
    """Why the result of `call` goes unchecked, or None when something looks at it."""
    parent = ctx.parent(call)
    if isinstance(parent, cst.Expr):
        return "its result is discarded"
    if isinstance(parent, (cst.Assign, cst.AnnAssign)) and parent.value is call:
        targets = [t.target for t in parent.targets] if isinstance(parent, cst.Assign) else [parent.target]
        if not all(isinstance(t, (cst.Name, cst.Tuple, cst.List)) for t in targets):
            return None  # stored into an attribute or a subscript: kept for later
        names = [n for t in targets for n in _target_names(t)]
        real = [n for n in names if n.value != "_"]
        if not real:
            return "its result is assigned to `_`"
        if not any(_read_later(ctx, n) for n in real):
            return f"its result (`{real[0].value}`) is never read"
    return None


class UncheckedStrictFalse(Rule):
    code = "CKPT006"
    name = "unchecked-strict-false"
    summary = "`load_state_dict(..., strict=False)` whose missing/unexpected keys are never looked at"
    fix_safety = "none"
    # it reports only on these calls, so files without them skip LibCST (triage.py)
    names = ("load_state_dict",)
    docs = """
    ## What it does
    Checks for `m.load_state_dict(sd, strict=False)` (also `m.load_state_dict(sd, False)`)
    whose result is discarded: used as a statement, assigned to `_`, or assigned to names
    that are never read. A result that is bound and read (its `missing_keys` /
    `unexpected_keys`, or passed to `print`, a logger, `assert`, `return`, ...) counts as
    checked.

    ## Why is this bad?
    With `strict=False`, keys that do not match are skipped without a word. A checkpoint
    saved from a `DataParallel` model (`module.` prefixes), a renamed layer or a different
    architecture then loads *nothing* into those layers, and the model silently runs with
    random weights. The call returns the missing and unexpected keys so you can check them.

    ## Example
    ```python
    model.load_state_dict(state, strict=False)
    ```

    ## Use instead
    ```python
    result = model.load_state_dict(state, strict=False)
    assert not result.missing_keys, f"missing: {result.missing_keys}"
    ```

    ## Fix safety
    No fix: which keys may be missing is the author's decision.
    """
    valid = (
        Valid("model.load_state_dict(sd)\n"),
        Valid("model.load_state_dict(sd, strict=True)\n"),
        Valid("model.load_state_dict(sd, strict=strict)\n"),
        Valid("result = model.load_state_dict(sd, strict=False)\nassert not result.missing_keys\n"),
        Valid("missing, unexpected = model.load_state_dict(sd, strict=False)\nprint('missing:', missing)\n"),
        Valid("msg = model.load_state_dict(sd, strict=False)\nlogger.info(msg)\n"),
        Valid("print(model.load_state_dict(sd, strict=False))\n"),
        Valid("def load(model, sd):\n    return model.load_state_dict(sd, strict=False)\n"),
        Valid("logging.info('loaded: %s', model.load_state_dict(sd, False))\n"),
        Valid(
            "incompatible = model.load_state_dict(sd, strict=False)\n"
            "if incompatible.unexpected_keys:\n    warnings.warn(str(incompatible.unexpected_keys))\n"
        ),
        Valid("self.load_info = model.load_state_dict(sd, strict=False)\n"),
        Valid(
            "def load(model, sd, fast):\n    if fast:\n        res = model.load_state_dict(sd, strict=False, assign=True)\n"
            "    else:\n        res = model.load_state_dict(sd, strict=False)\n    return res\n"
        ),
    )
    invalid = (
        Invalid("model.load_state_dict(sd, strict=False)\n", message_contains="discarded"),
        Invalid("model.load_state_dict(sd, False)\n"),
        Invalid("_ = model.load_state_dict(sd, strict=False)\n", message_contains="`_`"),
        Invalid("res = model.load_state_dict(sd, strict=False)\nmodel.eval()\n", message_contains="never read"),
        Invalid("_, _ = model.load_state_dict(sd, strict=False)\n"),
        Invalid(
            "def load(model, path):\n    sd = torch.load(path)\n    model.module.load_state_dict(sd, strict=False)\n"
            "    return model\n"
        ),
    )

    def check(self, ctx):
        for call in ctx.calls:
            receiver, meth = method_call(call)
            if meth != "load_state_dict":
                continue
            strict = find_arg(call, "strict", POSITIONAL["load_state_dict"])
            if not isinstance(strict, cst.Arg) or not is_literal(strict.value, "False"):
                continue
            why = unchecked(ctx, call)
            if why is None:
                continue
            target = ctx.code(receiver)
            ctx.report(
                call,
                f"`strict=False` load into {quoted_code(target, 30)}, and {why}",
                help=f"`{target}.load_state_dict(..., strict=False)` skips missing and unexpected keys "
                     f"silently, and {why}; check it: `result = {target}.load_state_dict(..., "
                     "strict=False)` then `assert not result.missing_keys, result.missing_keys`",
            )
