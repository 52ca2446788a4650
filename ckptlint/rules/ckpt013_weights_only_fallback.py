from __future__ import annotations

import libcst as cst

from ckptlint.analysis.calls import MAYBE, find_arg, is_literal
from ckptlint.rules._base import Invalid, Rule, Valid
from ckptlint.rules._guards import handler_of, within


def _weights_only(call: cst.Call):
    """True / False when written out, "absent" when not passed, None otherwise."""
    arg = find_arg(call, "weights_only")
    if arg is None:
        return "absent"
    if arg is MAYBE:
        return None
    if is_literal(arg.value, "True"):
        return True
    if is_literal(arg.value, "False"):
        return False
    return None


class WeightsOnlyFallback(Rule):
    code = "CKPT013"
    name = "weights-only-fallback"
    summary = "`torch.load(weights_only=True)` that falls back to a full unpickle when it fails"
    fix_safety = "none"
    security_severity = "9.8"
    requires_text = ("weights_only",)
    # it reports only on these calls, so files without them skip LibCST (triage.py)
    qualnames = ("torch.load",)
    docs = """
    ## What it does
    Checks for a `try:` that loads with `torch.load(..., weights_only=True)` (or without
    `weights_only`, which means `True` from torch 2.6) and an `except` clause that retries with
    `torch.load(..., weights_only=False)` (or, after an explicit `True`, without
    `weights_only`).

    ## Why is this bad?
    The weights-only loader refuses a file exactly when it holds something other than tensors
    and plain containers, such as a pickled object that runs code. Retrying with the full
    unpickler on that failure hands control to whoever wrote the file: the safe load protects
    nothing.

    ## Example
    ```python
    try:
        ckpt = torch.load(path, weights_only=True)
    except Exception:
        ckpt = torch.load(path, weights_only=False)
    ```

    ## Use instead
    ```python
    with torch.serialization.safe_globals([MyConfig]):
        ckpt = torch.load(path, weights_only=True)
    ```

    ## Fix safety
    No fix: which classes the file may hold is the author's decision.
    """
    valid = (
        Valid("import torch\nckpt = torch.load(p, weights_only=True)\n"),
        Valid(
            "import torch\ntry:\n    ckpt = torch.load(p, weights_only=True)\nexcept FileNotFoundError:\n"
            "    ckpt = None\n"
        ),
        Valid(
            "import torch\ntry:\n    ckpt = torch.load(p, weights_only=True)\nexcept Exception:\n"
            "    ckpt = torch.load(backup, weights_only=True)\n"
        ),
        Valid(
            "import torch\ntry:\n    ckpt = torch.load(p)\nexcept Exception:\n"
            "    ckpt = torch.load(p, map_location='cpu')\n"
        ),
        Valid(
            "import torch\ntry:\n    import safetensors\nexcept ImportError:\n"
            "    ckpt = torch.load(p, weights_only=False)\n"
        ),
        Valid(
            "import torch\ntry:\n    ckpt = torch.load(p, weights_only=True)\nexcept Exception:\n"
            "    def later():\n        return torch.load(p, weights_only=False)\n"
        ),
    )
    invalid = (
        Invalid(
            "import torch\ntry:\n    ckpt = torch.load(p, weights_only=True)\nexcept Exception:\n"
            "    ckpt = torch.load(p, weights_only=False)\n"
        ),
        Invalid(
            "import torch\ntry:\n    ckpt = torch.load(p, weights_only=True, map_location='cpu')\n"
            "except pickle.UnpicklingError:\n    ckpt = torch.load(p, map_location='cpu')\n"
        ),
        Invalid(
            "import torch\n\ndef load(p):\n    try:\n        return torch.load(p)\n    except Exception as e:\n"
            "        print(e)\n        if True:\n            return torch.load(p, weights_only=False)\n"
        ),
    )

    def check(self, ctx):
        loads = ctx.calls_to("torch.load")
        for call in loads:
            handler, try_node = handler_of(ctx, call)
            if handler is None or not isinstance(try_node, cst.Try):
                continue
            retry = _weights_only(call)
            if retry not in (False, "absent"):
                continue
            first = [
                c for c in loads
                if c is not call and any(within(ctx, c, stmt) for stmt in try_node.body.body)
            ]
            modes = [_weights_only(c) for c in first]
            if retry is False and any(m in (True, "absent") for m in modes) or retry == "absent" and True in modes:
                ctx.report(
                    call,
                    "Falls back to a full unpickle when the weights-only load fails",
                    help="This falls back to a full unpickle when the weights-only load fails: the file's "
                         "author controls that failure, so this runs any code the file holds; allow the "
                         "classes the file needs with `torch.serialization.safe_globals([...])` instead",
                )
