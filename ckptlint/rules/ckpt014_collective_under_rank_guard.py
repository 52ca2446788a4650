from __future__ import annotations

from typing import Optional

import libcst as cst

from ckptlint.analysis.calls import find_arg, is_literal
from ckptlint.rules._shared import quoted_code
from ckptlint.rules._base import Invalid, Rule, Valid
from ckptlint.rules._dist import (
    DCP_CALLS, DSD_GETTERS, DSD_SETTERS, FSDP_OPTIM, fsdp_state_dict_type, is_fsdp1, model_arg, sharding,
    short_name, state_dict_receiver, within,
)
from ckptlint.rules._guards import rank_guard

_DCP = "import torch\nimport torch.distributed as dist\nimport torch.distributed.checkpoint as dcp\n\n\n"
_FSDP = (
    "import torch\nfrom torch.distributed.fsdp import FullyShardedDataParallel as FSDP\n"
    "from torch.distributed.fsdp import FullStateDictConfig, StateDictType\n\n\n"
)
_DSD = (
    "import torch\nfrom torch.distributed.checkpoint.state_dict import (\n"
    "    StateDictOptions, get_model_state_dict, set_model_state_dict,\n)\n"
    "from torch.distributed.fsdp import fully_shard\n\n\n"
)

_ADVICE = {
    "dcp.save": "; DCP writes each rank's part itself (`no_dist=True` makes it a one-process call)",
    "dcp.load": "; DCP reads each rank's part itself (`no_dist=True` makes it a one-process call)",
    "get": " and save its result under the guard: only rank 0 needs to write it",
    "set": " (`StateDictOptions(broadcast_from_rank0=True)` sends rank 0's tensors to the others)",
    "fsdp": " (with `rank0_only=True` only rank 0 gets the tensors, but every rank must call it) "
            "and save its result under the guard",
}


class CollectiveUnderRankGuard(Rule):
    code = "CKPT014"
    name = "collective-checkpoint-under-rank-guard"
    summary = "a collective checkpoint call (DCP, distributed state dict, FSDP) made on some ranks only"
    fix_safety = "none"
    requires_text = ("state_dict", "checkpoint")
    # Every call it fires on is named through a torch import: DCP's functions, or for an FSDP
    # model's `state_dict()` the FSDP class (`FSDP(...)`, `FSDP.state_dict_type`); files that
    # spell none of these through torch skip LibCST (triage.py)
    modules = ("torch",)
    names = (
        "FullyShardedDataParallel", "state_dict_type", "set_state_dict_type",
        "save", "load", "async_save", "save_state_dict", "load_state_dict", "get_state_dict", "get_model_state_dict", "get_optimizer_state_dict", "set_state_dict",
        "set_model_state_dict", "set_optimizer_state_dict", "full_optim_state_dict", "optim_state_dict",
        "sharded_optim_state_dict", "scatter_full_optim_state_dict", "optim_state_dict_to_load",
    )
    docs = """
    ## What it does
    Checks for collective checkpoint calls made under a rank test: `torch.distributed.checkpoint`
    `save` / `load` / `async_save` (and the older `save_state_dict` / `load_state_dict`), the
    distributed state-dict functions (`get_state_dict`, `get_model_state_dict`,
    `get_optimizer_state_dict`, `set_state_dict`, `set_model_state_dict`,
    `set_optimizer_state_dict`), FSDP's optimizer state-dict functions
    (`FSDP.full_optim_state_dict`, `FSDP.optim_state_dict`, ...) and `state_dict()` /
    `load_state_dict()` of an FSDP model under `FULL_STATE_DICT` or `SHARDED_STATE_DICT` (an
    enclosing `with FSDP.state_dict_type(model, ...)`, or FSDP's default when the model is
    bound to `FSDP(...)`).

    A rank test is a condition that holds on some ranks and not on others: `if rank == 0:`,
    `if dist.get_rank() == 0:`, `if is_main_process():`, `if accelerator.is_main_process:`,
    `if trainer.is_global_zero:`, either branch of one, an earlier `if rank != 0: return`, a
    decorator such as `@rank_zero_only`, or a call of the enclosing function (in the same file)
    made under one of those. `if local_rank != -1:` or `if rank is not None:` ask whether the run
    is distributed, not which rank this is: they are not rank tests.

    ## Why is this bad?
    These calls exchange data between all ranks of the process group: each rank waits until
    every other rank has made the same call. Made on rank 0 only, rank 0 waits for ranks that
    never come, and the job hangs until the collective times out (30 minutes by default with
    NCCL), usually at the first checkpoint, after hours of training. `rank0_only=True` in
    FSDP's `FullStateDictConfig` does not change this: it only decides which rank receives the
    gathered tensors.

    ## Example
    ```python
    if dist.get_rank() == 0:
        with FSDP.state_dict_type(model, StateDictType.FULL_STATE_DICT, cfg):
            torch.save(model.state_dict(), "model.pt")
    ```

    ## Use instead
    ```python
    with FSDP.state_dict_type(model, StateDictType.FULL_STATE_DICT, cfg):
        state = model.state_dict()  # on every rank
    if dist.get_rank() == 0:
        torch.save(state, "model.pt")
    ```

    ## Fix safety
    No fix: which statements move out of the guard is the author's decision.
    """
    valid = (
        Valid(
            _DSD + "def shard(model, rank):\n    state = {}\n    if rank == 0:\n"
            "        state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True))\n"
            "    fully_shard(model)\n    broadcast_from_rank0(model, state)\n"
        ),
        Valid(
            _DSD + "def save(model, rank):\n"
            "    options = StateDictOptions(full_state_dict=True, cpu_offload=True)\n"
            "    state = get_model_state_dict(model, options=options)\n"
            "    if rank == 0:\n        torch.save(state, 'model.pt')\n"
        ),
        Valid(
            _DCP + "def save(state, args):\n    if args.local_rank != -1:\n"
            "        dcp.save(state, checkpoint_id=args.out)\n"
        ),
        Valid(
            _DCP + "def convert(state, path):\n    if dist.get_rank() == 0:\n"
            "        dcp.save(state, checkpoint_id=path, no_dist=True)\n"
        ),
        Valid(
            _FSDP + "def save(model, rank):\n    if rank == 0:\n"
            "        with FSDP.state_dict_type(model, StateDictType.LOCAL_STATE_DICT):\n"
            "            torch.save(model.state_dict(), f'shard{rank}.pt')\n"
        ),
        Valid(
            _DCP + "def save(state, path):\n    dcp.save(state, checkpoint_id=path)\n\n\n"
            "def on_save(state, path):\n    save(state, path)\n    if dist.get_rank() == 0:\n"
            "        print('saved', path)\n"
        ),
        Valid(
            "import torch\nimport torch.distributed as dist\n\n\ndef save(state, path):\n"
            "    torch.save(state, path)\n\n\nif dist.get_rank() == 0:\n    save(model.state_dict(), 'm.pt')\n"
        ),
        Valid(
            _FSDP + "def save(model, rank, cfg):\n"
            "    with FSDP.state_dict_type(model, StateDictType.FULL_STATE_DICT, cfg):\n"
            "        if rank == 0:\n            state = model.state_dict()\n"
            "        else:\n            model.state_dict()\n"
        ),
    )
    invalid = (
        Invalid(
            _DCP + "def save(model, step):\n    if dist.get_rank() == 0:\n"
            "        dcp.save({'model': model.state_dict()}, checkpoint_id=f'ckpt/{step}')\n",
            help_contains="`dcp.save` is a collective: every rank must call it, but this call runs "
            "only under `if dist.get_rank() == 0` (line 7)",
        ),
        Invalid(
            _FSDP + "def save(model, rank):\n    if rank == 0:\n"
            "        cfg = FullStateDictConfig(offload_to_cpu=True, rank0_only=True)\n"
            "        with FSDP.state_dict_type(model, StateDictType.FULL_STATE_DICT, cfg):\n"
            "            torch.save(model.state_dict(), 'model.pt')\n",
            help_contains="FULL_STATE_DICT",
        ),
        Invalid(
            _DSD + "def save(accelerator, model):\n    fully_shard(model)\n    ...\n"
            "    if accelerator.is_main_process:\n        options = StateDictOptions(full_state_dict=True)\n"
            "        torch.save(get_model_state_dict(model, options=options), 'model.pt')\n",
            help_contains="`get_model_state_dict` is a collective here (`model` is sharded by `fully_shard(...)` at line 9)",
        ),
        Invalid(
            _FSDP + "def save_optimizer(model, optim, path):\n    if not is_main_process():\n        return\n"
            "    torch.save(FSDP.full_optim_state_dict(model, optim), path)\n",
            help_contains="after `if not is_main_process(): return` (line 7)",
        ),
        Invalid(
            _DCP + "class Checkpointer:\n    def save(self, path):\n"
            "        dcp.save(self.state, checkpoint_id=path)\n\n"
            "    def on_epoch_end(self, trainer):\n        if trainer.is_global_zero:\n"
            "            self.save(self.folder)\n",
            help_contains="in `save`, called under `if trainer.is_global_zero` (line 11)",
        ),
        Invalid(
            _DSD + "class Module:\n    def __init__(self, net):\n        self.net = net\n        fully_shard(self.net)\n\n"
            "    @rank_zero_only\n    def restore(self, state):\n        set_model_state_dict(self.net, state)\n"
        ),
        Invalid(
            "import os\nfrom torch.distributed.checkpoint import state_dict_loader as loader\n\n"
            "state = {}\nif int(os.environ['RANK']) == 0:\n    loader.load(state, checkpoint_id='ckpt')\n"
        ),
        Invalid(
            _FSDP + "def save(model, rank):\n    model = FSDP(model)\n"
            "    state = model.state_dict() if rank == 0 else None\n",
            help_contains="FSDP's default",
        ),
    )

    def check(self, ctx):
        for call in ctx.calls:
            what = self._collective(ctx, call)
            if what is None:
                continue
            guard = rank_guard(ctx, call)
            if guard is None or _other_branch_calls(ctx, guard.branch_if, call):
                continue
            label, kind = what
            line = ctx.start(guard.node).row
            ctx.report(
                call,
                f"Collective {quoted_code(ctx.code(call.func) + '()', 30)} runs on some ranks only "
                f"(line {line}): the job hangs",
                help=f"{label}: every rank must call it, but this call runs only "
                     f"{guard.text} (line {line}); the other ranks never join and the job hangs; "
                     f"call it on every rank{_ADVICE[kind]}",
            )

    @staticmethod
    def _collective(ctx, call) -> Optional[tuple]:
        """(how to name the call, which advice) when `call` is a collective, else None."""
        q = ctx.call_qname(call)
        if q in DCP_CALLS:
            for single in ("no_dist", "process_group"):  # one process, or a group of some ranks
                arg = find_arg(call, single)
                if arg is not None and not (isinstance(arg, cst.Arg) and is_literal(arg.value, "None")):
                    if single == "process_group" or not is_literal(getattr(arg, "value", None), "False"):
                        return None
            return f"`{short_name(q)}` is a collective", "dcp.load" if "load" in q else "dcp.save"
        if q in DSD_GETTERS or q in DSD_SETTERS:
            model = model_arg(call)
            how = sharding(ctx, model, call) if model is not None else None
            if how is None:
                return None  # on a plain module these gather nothing: rank 0 alone may call them
            return f"`{short_name(q)}` is a collective here ({how})", "get" if q in DSD_GETTERS else "set"
        if q in FSDP_OPTIM:
            return (f"`{short_name(q)}` is a collective", "fsdp") if find_arg(call, "group") is None else None
        receiver = state_dict_receiver(call)
        if receiver is None:
            return None
        method = call.func.attr.value
        label = f"`{ctx.code(receiver)}.{method}()`"
        found = fsdp_state_dict_type(ctx, receiver, call)
        if found is not None:
            kind, _ = found
            if kind in ("FULL", "SHARDED"):
                return f"{label} of an FSDP model under `{kind}_STATE_DICT` is a collective", "fsdp"
            return None
        if is_fsdp1(ctx, receiver):
            return f"{label} of an FSDP model is a collective (FSDP's default `FULL_STATE_DICT` gathers every shard)", "fsdp"
        return None


def _other_branch_calls(ctx, branch_if, call) -> bool:
    """The other ranks make the same call in the other branch of the guarding `if`."""
    if not isinstance(branch_if, cst.If) or branch_if.orelse is None:
        return False
    other = branch_if.orelse if within(ctx, call, branch_if.body) else branch_if.body
    callee = "".join(ctx.code(call.func).split())
    return any(
        "".join(ctx.code(c.func).split()) == callee and within(ctx, c, other)
        for c in ctx.calls
    )
