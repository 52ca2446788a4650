from __future__ import annotations

from typing import Optional

import libcst as cst

from ckptlint.analysis.calls import POSITIONAL, find_arg, method_call
from ckptlint.rules._base import Invalid, Rule, Valid
from ckptlint.rules._dist import (
    DSD_GETTERS, FSDP_OPTIM, dtensor_sharding, fsdp_state_dict_type, full_state_dict_option,
    model_arg, per_rank_path, sharding, short_name,
)
from ckptlint.rules._guards import rank_guard, writes_to_buffer
from ckptlint.rules._saves import saved_calls, saved_object

_FSDP = (
    "import torch\nfrom torch.distributed.fsdp import FullyShardedDataParallel as FSDP\n"
    "from torch.distributed.fsdp import StateDictType\n\n\n"
)
_FSDP2 = "import torch\nimport torch.distributed as dist\nfrom torch.distributed.fsdp import fully_shard\n\n\n"
_DSD = (
    "import torch\nfrom torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict\n"
    "from torch.distributed.fsdp import fully_shard\n\n\n"
)


class ShardedStateDictTorchSave(Rule):
    code = "CKPT015"
    name = "sharded-state-dict-torch-save"
    summary = "`torch.save` of a sharded (FSDP / DTensor) state dict"
    fix_safety = "none"
    # it reports only on these calls, so files without them skip LibCST (triage.py)
    qualnames = ("torch.save",)
    docs = """
    ## What it does
    Checks for `torch.save` of a state dict that holds shards instead of whole tensors:
    `model.state_dict()` of a model sharded with `fully_shard(model)` (FSDP2) or
    `parallelize_module(model, ...)` (tensor parallel), whose parameters are DTensors;
    `model.state_dict()` under `FSDP.state_dict_type(model, SHARDED_STATE_DICT)` or
    `LOCAL_STATE_DICT` (an enclosing `with`, or `FSDP.set_state_dict_type` earlier in the
    function); `FSDP.sharded_optim_state_dict`, and `FSDP.optim_state_dict` under those types;
    `get_model_state_dict` / `get_state_dict` / `get_optimizer_state_dict` of a sharded model
    without `options=StateDictOptions(full_state_dict=True)`. The state dict may be saved
    directly, as a value of a saved dict, or through a name bound to it. A save to a path that
    names the rank (`f"model_rank{rank}.pt"`) writes one file per rank and is not reported.

    ## Why is this bad?
    Every rank holds a different shard, and every rank writes it to the same path: the file
    ends up holding whichever rank wrote last, a fraction of each tensor. Saved on rank 0 only,
    it holds rank 0's fraction. Either way the file pickles DTensor / ShardedTensor objects
    with their device mesh and process group layout, so it loads only into the same sharding,
    not into a plain model, and not with a different number of GPUs.

    ## Example
    ```python
    fully_shard(model)
    ...
    torch.save(model.state_dict(), "model.pt")
    ```

    ## Use instead
    ```python
    # one folder, each rank writes its shards; loads into any sharding
    dcp.save({"model": model.state_dict()}, checkpoint_id="ckpt/step-1000")
    # or one plain file with whole tensors
    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    state = get_model_state_dict(model, options=options)  # on every rank
    if dist.get_rank() == 0:
        torch.save(state, "model.pt")
    ```

    ## Fix safety
    No fix: the right format (a DCP folder or a gathered file) is the author's choice.
    """
    valid = (
        Valid(
            _DSD + "def save(model, rank):\n    fully_shard(model)\n    ...\n"
            "    options = StateDictOptions(full_state_dict=True, cpu_offload=True)\n"
            "    state = get_model_state_dict(model, options=options)\n"
            "    if rank == 0:\n        torch.save(state, 'model.pt')\n"
        ),
        Valid(
            "import os\n" + _FSDP + "def save(model, rank, folder):\n    path = os.path.join(folder, f'model_rank{rank}.pt')\n"
            "    with FSDP.state_dict_type(model, StateDictType.LOCAL_STATE_DICT):\n"
            "        torch.save(model.state_dict(), path)\n"
        ),
        Valid(
            _FSDP + "def save(model):\n    with FSDP.state_dict_type(model, StateDictType.FULL_STATE_DICT):\n"
            "        state = model.state_dict()\n    torch.save(state, 'model.pt')\n"
        ),
        Valid(
            _FSDP2 + "def export(model, layers):\n    state = model.state_dict()\n    torch.save(state, 'init.pt')\n"
            "    for layer in layers:\n        fully_shard(layer)\n    fully_shard(model)\n"
        ),
        Valid(
            _FSDP2 + "def save(model):\n    fully_shard(model)\n"
            "    state = {k: v.full_tensor() for k, v in model.state_dict().items()}\n"
            "    torch.save(state, 'model.pt')\n"
        ),
        Valid(_DSD + "def save(model):\n    torch.save(get_model_state_dict(model), 'model.pt')\n"),
    )
    invalid = (
        Invalid(
            _FSDP2 + "def train(model, optimizer):\n    for block in model.layers:\n        fully_shard(block)\n"
            "    fully_shard(model)\n    ...\n    torch.save({'model': model.state_dict(), 'step': 10}, 'ckpt.pt')\n",
            help_contains="`model` is sharded by `fully_shard(...)` at line 9: its state dict holds "
            "DTensor shards; every rank writes its own shard to this one path",
        ),
        Invalid(
            _FSDP + "def save(model, rank):\n"
            "    with FSDP.state_dict_type(model, StateDictType.SHARDED_STATE_DICT):\n"
            "        state = model.state_dict()\n        optim = FSDP.optim_state_dict(model, optimizer)\n"
            "    if rank == 0:\n        torch.save({'model': state, 'optim': optim}, 'ckpt.pt')\n",
            message_contains="only rank 0's shard is saved",
        ),
        Invalid(
            _DSD + "class Trainer:\n    def __init__(self, model):\n        self.model = fully_shard(model)\n\n"
            "    def save(self, path):\n        torch.save(get_model_state_dict(self.model), path)\n",
            help_contains="without `options=StateDictOptions(full_state_dict=True)`",
        ),
        Invalid(
            "import torch\nfrom torch.distributed.checkpoint.state_dict import get_state_dict\n"
            "from torch.distributed.fsdp import FullyShardedDataParallel\n\n\n"
            "def save(net, opt):\n    model = FullyShardedDataParallel(net)\n"
            "    model_state, optim_state = get_state_dict(model, opt)\n"
            "    torch.save(optim_state, 'optim.pt')\n",
        ),
        Invalid(
            "import torch\nfrom torch.distributed.tensor.parallel import parallelize_module\n\n\n"
            "def save(model, mesh, plan):\n    model = parallelize_module(model, mesh, plan)\n"
            "    sd = model.state_dict()\n    torch.save(sd, 'tp.pt')\n",
        ),
    )

    def check(self, ctx):
        for call in ctx.calls_to("torch.save"):
            obj = saved_object(call)
            f = find_arg(call, "f", POSITIONAL["torch.save"])
            if obj is None or not isinstance(f, cst.Arg):
                continue
            if per_rank_path(ctx, f.value) or writes_to_buffer(ctx, f.value):
                continue  # one file per rank, or bytes in memory
            for saved in saved_calls(ctx, obj, unpacked=True):
                why = _sharded(ctx, saved)
                if why is None:
                    continue
                guarded = rank_guard(ctx, call) is not None
                where = (
                    "only rank 0's shard is saved" if guarded
                    else "every rank writes its own shard to this one path"
                )
                ctx.report(
                    call,
                    "`torch.save` of a sharded state dict: " + (
                        "only rank 0's shard is saved" if guarded else "every rank writes its shard to one path"),
                    help=f"{why}; {where}, and the file holds sharded tensors that load only into the "
                         "same sharding; save it with `torch.distributed.checkpoint.save`, or gather a "
                         "full state dict (`StateDictOptions(full_state_dict=True)`) and save that on rank 0",
                )
                break


def _sharded(ctx, call: cst.Call) -> Optional[str]:
    """Why the state dict `call` returns holds shards, or None."""
    receiver, meth = method_call(call)
    if meth == "state_dict" and receiver is not None:
        how = dtensor_sharding(ctx, receiver, call)
        if how is not None:
            return (f"`{ctx.code(receiver)}` is sharded by `{ctx.code(how.func)}(...)` at line "
                    f"{ctx.start(how).row}: its state dict holds DTensor shards")
        return _fsdp_sharded_type(ctx, receiver, call, f"`{ctx.code(receiver)}.state_dict()`")
    q = ctx.call_qname(call)
    if q in FSDP_OPTIM:
        name = short_name(q)
        if q.endswith(".sharded_optim_state_dict"):
            return f"`{name}` returns ShardedTensors"
        model = model_arg(call)
        if q.endswith(".optim_state_dict") and model is not None:
            return _fsdp_sharded_type(ctx, model, call, f"`{name}`")
        return None
    if q in DSD_GETTERS and full_state_dict_option(ctx, call) is False:
        model = model_arg(call)
        how = sharding(ctx, model, call) if model is not None else None
        if how is not None:
            return (f"{how}, and `{short_name(q)}` without `options=StateDictOptions(full_state_dict=True)` "
                    "returns its shards")
    return None


def _fsdp_sharded_type(ctx, model, at, label: str) -> Optional[str]:
    found = fsdp_state_dict_type(ctx, model, at)
    if found is None or found[0] not in ("SHARDED", "LOCAL"):
        return None
    kind, setter = found
    return f"{label} under `{kind}_STATE_DICT` (line {ctx.start(setter).row}) holds each rank's shard"
