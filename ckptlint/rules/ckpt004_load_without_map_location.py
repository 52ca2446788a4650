from __future__ import annotations

import re

import libcst as cst

from ckptlint.analysis.calls import POSITIONAL, find_arg, method_call
from ckptlint.diagnostic import SAFE, UNSAFE
from ckptlint.rules._base import Invalid, Rule, Valid
from ckptlint.rules._guards import reads_buffer


def _feeds_load_state_dict(ctx, call: cst.Call) -> bool:
    """True when the load's result goes straight into `x.load_state_dict(<here>, ...)`."""
    arg = ctx.parent(call)
    outer = ctx.parent(arg) if isinstance(arg, cst.Arg) else None
    if not isinstance(outer, cst.Call) or outer.args[0] is not arg:
        return False
    _, meth = method_call(outer)
    return meth == "load_state_dict" and arg.keyword is None


_CACHE = re.compile(r"cache|hash", re.IGNORECASE)


class LoadWithoutMapLocation(Rule):
    code = "CKPT004"
    name = "load-without-map-location"
    summary = "`torch.load` without `map_location=`"
    fix_safety = "sometimes"
    fix_title = 'Add `map_location="cpu"`'
    qualnames = ("torch.load",)
    docs = """
    ## What it does
    Checks for calls to `torch.load` that pass no `map_location` (as a keyword or as the
    second positional argument). Loads from an in-memory `io.BytesIO(...)` buffer (bytes
    passed between the processes of one job) are left alone.

    ## Why is this bad?
    Tensors come back on the device they were saved from. A checkpoint written on a GPU then
    fails to load on a CPU-only host (`RuntimeError: Attempting to deserialize object on a
    CUDA device`), and in a distributed job every rank loads its copy onto GPU 0, which runs
    out of memory.

    ## Example
    ```python
    import torch

    model.load_state_dict(torch.load("model.pt", weights_only=True))
    ```

    ## Use instead
    ```python
    import torch

    model.load_state_dict(torch.load("model.pt", map_location="cpu", weights_only=True))
    ```

    ## Fix safety
    Safe when the result is passed straight into `load_state_dict(...)`, which copies every
    tensor onto the device of the parameter it fills, so where the file's tensors land first
    does not matter. Unsafe elsewhere: code that uses the loaded tensors directly would now get
    them on the CPU, and the message says so (for a cache of preprocessed tensors, say, which
    then reach the model from the CPU).
    """
    valid = (
        Valid("import torch\ntorch.load('m.pt', map_location='cpu', weights_only=True)\n"),
        Valid("import torch\ntorch.load('m.pt', 'cpu', weights_only=True)\n"),
        Valid("import torch\ntorch.load('m.pt', map_location=device, weights_only=True)\n"),
        Valid("import torch\ntorch.load('m.pt', *args)\n"),
        Valid("import torch\ntorch.load('m.pt', **kw)\n"),
        Valid("import torch\ntorch.jit.load('m.pt')\n"),
        Valid("import io, torch\nobj = torch.load(io.BytesIO(payload), weights_only=True)\n"),
        Valid("import io, torch\nbuf = io.BytesIO(data)\nobj = torch.load(buf, weights_only=True)\n"),
    )
    invalid = (
        Invalid(
            "import torch\nmodel.load_state_dict(torch.load('m.pt', weights_only=True))\n",
            "import torch\nmodel.load_state_dict(torch.load('m.pt', weights_only=True, map_location='cpu'))\n",
        ),
        Invalid(
            'import torch\nsd = torch.load("m.pt", weights_only=True)\n',
            'import torch\nsd = torch.load("m.pt", weights_only=True, map_location="cpu")\n',
        ),
        Invalid(
            # a dataset cache of preprocessed tensors: the fix changes where they land
            "import torch\n\ndef cached_item(self, hashfile):\n    return torch.load(hashfile, weights_only=True)\n",
            "import torch\n\ndef cached_item(self, hashfile):\n    return torch.load(hashfile, weights_only=True, map_location=\"cpu\")\n",
            help_contains="this cache's tensors come back on the CPU",
        ),
        Invalid(
            "import torch as T\nm.load_state_dict(T.load(p), strict=True)\n",
            "import torch as T\nm.load_state_dict(T.load(p, map_location=\"cpu\"), strict=True)\n",
        ),
    )

    def check(self, ctx):
        for call in ctx.calls_to("torch.load"):
            if find_arg(call, "map_location", POSITIONAL["torch.load"]) is not None or reads_buffer(ctx, call):
                continue
            safe = _feeds_load_state_dict(ctx, call)
            if safe:
                where = "; its result goes straight into `load_state_dict`, so mapping to the CPU is safe"
            else:
                f = call.args[0].value if call.args and call.args[0].keyword is None else None
                cache = f is not None and _CACHE.search(ctx.code(f))
                where = (f"; with `map_location=\"cpu\"` {'this cache' if cache else 'the file'}'s tensors "
                         "come back on the CPU, not on the device they were saved from: code that uses "
                         "them directly must move them (`.to(device)`)")
            ctx.report(
                call,
                "`torch.load` without `map_location=`: a GPU-saved file fails on a CPU-only host",
                [ctx.add_keyword(call, f"map_location={ctx.quoted('cpu', call)}")],
                SAFE if safe else UNSAFE,
                help="A file saved on a GPU fails to load on a CPU-only host, and every distributed rank "
                     "loads it onto GPU 0" + where,
            )
