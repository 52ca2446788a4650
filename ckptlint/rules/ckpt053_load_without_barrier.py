from __future__ import annotations

import re

import libcst as cst

from ckptlint.analysis.calls import find_arg
from ckptlint.rules._shared import quoted_code
from ckptlint.rules._base import Invalid, Rule, Valid
from ckptlint.rules._dist import same_expr, within
from ckptlint.rules._guards import enclosing_function, rank_guard, writes_to_buffer

_SAVES = {"torch.save": ("obj", "f"), "safetensors.torch.save_file": ("tensors", "filename")}
_LOADS = {"torch.load": ("f",), "safetensors.torch.load_file": ("filename",)}
# calls every rank must reach before any goes on: rank 0 has finished its write by then
_SYNC = re.compile(
    r"barrier|monitored_barrier|wait_for_everyone|rendezvous|synchronize|broadcast\w*|all_reduce|all_gather\w*"
)
_NOT_SYNC = ("torch.cuda.", "torch.xpu.", "torch.mps.", "torch.npu.")  # device syncs, not rank syncs

_HEAD = "import torch\nimport torch.distributed as dist\n\n\n"


def _path(call, qname, table):
    names = table[qname]
    arg = find_arg(call, names[-1], names)
    return arg.value if isinstance(arg, cst.Arg) else None


class LoadWithoutBarrier(Rule):
    code = "CKPT053"
    name = "load-without-barrier"
    summary = "other ranks load a file rank 0 saves, with no barrier between the save and the load"
    default_enabled = False
    fix_safety = "none"
    # it reports only on these calls, so files without them skip LibCST (triage.py)
    qualnames = ("torch.load", "safetensors.torch.load_file")
    docs = """
    ## What it does
    In one function, checks for a `torch.save` (or safetensors `save_file`) under a rank test
    (`if rank == 0:`, `if accelerator.is_main_process:`, ...) followed by a `torch.load` (or
    `load_file`) of the same path outside that branch, with no call that synchronises the
    ranks in between (`dist.barrier()`, `accelerator.wait_for_everyone()`, a broadcast, ...).
    Paths are compared as written (`CKPT_PATH` and `CKPT_PATH`, `f"{d}/m.pt"` and
    `f"{d}/m.pt"`).

    ## Why is this bad?
    Nothing makes the other ranks wait for rank 0: they reach the load while rank 0 is still
    writing, and read a missing file, a truncated one (`PytorchStreamReader failed reading
    zip archive`), or the previous checkpoint under the same name. It fails now and then,
    depending on timing, which makes it hard to trace.

    ## Example
    ```python
    if rank == 0:
        torch.save(model.state_dict(), CKPT_PATH)
    model.load_state_dict(torch.load(CKPT_PATH, map_location=f"cuda:{rank}"))
    ```

    ## Use instead
    ```python
    if rank == 0:
        torch.save(model.state_dict(), CKPT_PATH)
    dist.barrier()  # the other ranks wait until rank 0 has written the file
    model.load_state_dict(torch.load(CKPT_PATH, map_location=f"cuda:{rank}"))
    ```

    ## Fix safety
    No fix: the barrier to call depends on the launcher (`dist.barrier()`,
    `accelerator.wait_for_everyone()`, `trainer.strategy.barrier()`).
    """
    valid = (
        Valid(
            _HEAD + "def roundtrip(model, rank, path):\n    if rank == 0:\n        torch.save(model.state_dict(), path)\n"
            "    dist.barrier()\n    model.load_state_dict(torch.load(path, map_location='cpu'))\n"
        ),
        Valid(
            _HEAD + "def roundtrip(model, rank, path):\n    if rank == 0:\n        torch.save(model.state_dict(), path)\n"
            "        state = torch.load(path, map_location='cpu')\n"
        ),
        Valid(
            _HEAD + "def resume(model, rank, folder):\n    if rank == 0:\n"
            "        torch.save(model.state_dict(), f'{folder}/last.pt')\n"
            "    return torch.load(f'{folder}/best.pt', map_location='cpu')\n"
        ),
        Valid(
            "import torch\n\n\ndef sync(accelerator, model, path):\n    if accelerator.is_main_process:\n"
            "        torch.save(model.state_dict(), path)\n    accelerator.wait_for_everyone()\n"
            "    model.load_state_dict(torch.load(path, map_location='cpu'))\n"
        ),
        Valid(
            _HEAD + "def roundtrip(model, path):\n    torch.save(model.state_dict(), path)\n"
            "    model.load_state_dict(torch.load(path, map_location='cpu'))\n"
        ),
    )
    invalid = (
        Invalid(
            _HEAD + "CHECKPOINT_PATH = 'model.checkpoint'\n\n\ndef demo(ddp_model, rank):\n    if rank == 0:\n"
            "        torch.save(ddp_model.state_dict(), CHECKPOINT_PATH)\n"
            "    map_location = {'cuda:0': f'cuda:{rank}'}\n"
            "    ddp_model.load_state_dict(torch.load(CHECKPOINT_PATH, map_location=map_location))\n",
            help_contains="`torch.load` of `CHECKPOINT_PATH` reads the file saved at line 10 under "
            "`if rank == 0`, and nothing between makes the other ranks wait",
        ),
        Invalid(
            _HEAD + "def share(model, path):\n    if dist.get_rank() == 0:\n        torch.save(model.state_dict(), path)\n"
            "    else:\n        model.load_state_dict(torch.load(path, weights_only=True))\n"
        ),
        Invalid(
            "from safetensors.torch import load_file, save_file\n\n\n"
            "def sync(accelerator, model, path):\n    if accelerator.is_main_process:\n"
            "        save_file(model.state_dict(), path)\n    model.load_state_dict(load_file(path))\n"
        ),
    )

    def check(self, ctx):
        saves = [(c, q) for c in ctx.calls if (q := ctx.call_qname(c)) in _SAVES]
        if not saves:
            return
        for load in ctx.calls:
            q = ctx.call_qname(load)
            if q not in _LOADS:
                continue
            path = _path(load, q, _LOADS)
            if path is None:
                continue
            scope = enclosing_function(ctx, load)
            for save, sq in saves:
                guard = self._racing_save(ctx, save, sq, load, path, scope)
                if guard is None:
                    continue
                what = "torch.load" if q == "torch.load" else "load_file"
                ctx.report(
                    load,
                    f"`{what}` of {quoted_code(ctx.code(path), 30)} can read the file before the save of "
                    f"line {ctx.start(save).row} ends",
                    help=f"`{what}` of `{ctx.code(path)}` reads the file saved at line {ctx.start(save).row} "
                    f"{guard.text}, and nothing between makes the other ranks wait for that write: they can read a "
                    "missing, half-written or old file; call `dist.barrier()` (or your launcher's "
                    "barrier) after the save",
                )
                break

    @staticmethod
    def _racing_save(ctx, save, qname, load, path, scope):
        """The rank guard of `save` when it writes `path` before `load` reads it, in the same
        function, on ranks `load` is not limited to, with no synchronising call between."""
        if enclosing_function(ctx, save) is not scope or ctx.order(save) > ctx.order(load):
            return None
        written = _path(save, qname, _SAVES)
        if written is None or not same_expr(ctx, written, path) or writes_to_buffer(ctx, written):
            return None  # not this path, or bytes in memory (sent to the other ranks some other way)
        guard = rank_guard(ctx, save)
        branch_if = guard.branch_if if guard is not None else None
        if branch_if is None or (scope is not None and not within(ctx, branch_if, scope)):
            return None  # guarded from outside: the load runs on the same ranks
        branch = branch_if.body if within(ctx, save, branch_if.body) else branch_if.orelse
        if within(ctx, load, branch):
            return None  # same ranks
        lo, hi = ctx.order(save), ctx.order(load)
        for call in ctx.calls:
            if lo < ctx.order(call) < hi and enclosing_function(ctx, call) is scope and _syncs(ctx, call):
                return None
        return guard


def _syncs(ctx, call) -> bool:
    f = call.func
    name = f.attr.value if isinstance(f, cst.Attribute) else f.value if isinstance(f, cst.Name) else ""
    if not _SYNC.fullmatch(name):
        return False
    qname = ctx.call_qname(call) or ""
    return not qname.startswith(_NOT_SYNC)
