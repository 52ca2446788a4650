from __future__ import annotations

import libcst as cst

from ckptlint.analysis.library import WRAPPER_NAMES
from ckptlint.analysis.kinds import WRAPPER
from ckptlint.diagnostic import SAFE, UNSAFE
from ckptlint.rules._base import Invalid, Rule, Valid
from ckptlint.rules._saves import saved_object, saved_values, state_dict_calls, with_suffix
from ckptlint.rules._shared import quoted_code

# wrapper kind -> (attribute that holds the real model, prefix its state_dict keys get)
_INNER = {"dp": ("module", "module."), "ddp": ("module", "module."), "compile": ("_orig_mod", "_orig_mod.")}

_HEAD = (
    "import torch\nimport torch.nn as nn\nfrom torch.nn.parallel import DistributedDataParallel as DDP\n\n\n"
    "class Net(nn.Module):\n    pass\n\n\n"
)


class WrapperStateDict(Rule):
    code = "CKPT005"
    name = "wrapper-state-dict"
    summary = "saving the state dict (or the object) of a `DataParallel`/`DDP`/`torch.compile` wrapper"
    fix_safety = "sometimes"
    fix_title = "Save the wrapped model's state dict"
    # it reports only on these calls, so files without them skip LibCST (triage.py)
    qualnames = ("torch.save",)
    docs = """
    ## What it does
    Checks for `torch.save` of `m.state_dict()` (directly, through a name, or as a value of a
    saved dict) where `m` is an `nn.DataParallel`, `DistributedDataParallel` or
    `torch.compile(...)` wrapper, and for `torch.save(m, f)` of such a wrapper object.
    A name counts as a wrapper when it is bound to the wrapper call in the same scope
    (`model = DDP(model)` after `model = Net()` is followed in order), or is a parameter or
    attribute annotated with the wrapper class.

    ## Why is this bad?
    A wrapper's state dict has every key prefixed: `module.` for (Distributed)DataParallel,
    `_orig_mod.` for `torch.compile`. Loading it into the plain model fails with missing and
    unexpected keys, or, with `strict=False`, silently loads nothing.

    ## Example
    ```python
    model = DDP(Net().cuda())
    torch.save(model.state_dict(), "model.pt")
    ```

    ## Use instead
    ```python
    model = DDP(Net().cuda())
    torch.save(model.module.state_dict(), "model.pt")
    ```

    ## Fix safety
    Safe for `.state_dict()` of a wrapper: inserts `.module` (or `._orig_mod`), so the saved
    tensors are the same, under the keys the plain model expects. When the name is wrapped on
    one path only (`if distributed: model = DDP(model)`), the fix writes
    `getattr(model, "module", model).state_dict()`, which is right on both paths. Unsafe when the wrapper
    object itself is saved: the file then holds a state dict instead of a pickled module.
    FSDP wrappers are not reported: their state dict depends on the state-dict type in force.
    """
    valid = (
        Valid(_HEAD + "model = DDP(Net())\ntorch.save(model.module.state_dict(), 'm.pt')\n"),
        Valid(_HEAD + "model = Net()\ntorch.save(model.state_dict(), 'm.pt')\nmodel = DDP(model)\n"),
        Valid(_HEAD + "model = torch.compile(Net())\ntorch.save(model._orig_mod.state_dict(), 'm.pt')\n"),
        Valid(
            _HEAD + "model = DDP(Net())\nto_save = model.module if hasattr(model, 'module') else model\n"
            "torch.save(to_save.state_dict(), 'm.pt')\n"
        ),
        Valid(
            _HEAD + "model = DDP(Net())\nunwrapped = accelerator.unwrap_model(model)\n"
            "torch.save(unwrapped.state_dict(), 'm.pt')\n"
        ),
        Valid(_HEAD + "model = DDP(Net())\ntorch.save(getattr(model, 'module', model).state_dict(), 'm.pt')\n"),
        Valid(_HEAD + "model = DDP(Net())\ntorch.save(optimizer.state_dict(), 'opt.pt')\n"),
        Valid(
            "import torch\nfrom torch.distributed.fsdp import FullyShardedDataParallel as FSDP\n\n"
            "model = FSDP(net)\ntorch.save(model.state_dict(), 'm.pt')\n"
        ),
    )
    invalid = (
        Invalid(
            _HEAD + "model = Net()\nmodel = DDP(model)\ntorch.save(model.state_dict(), 'm.pt')\n",
            _HEAD + "model = Net()\nmodel = DDP(model)\ntorch.save(model.module.state_dict(), 'm.pt')\n",
            help_contains="`model` is a DistributedDataParallel wrapper (`DDP(...)`, bound at line 11); "
            "its state_dict keys start with `module.`; save `model.module.state_dict()`",
        ),
        Invalid(
            _HEAD + "model = nn.DataParallel(Net())\n"
            "torch.save({'model': model.state_dict(), 'epoch': 1}, 'ckpt.pt')\n",
            _HEAD + "model = nn.DataParallel(Net())\n"
            "torch.save({'model': model.module.state_dict(), 'epoch': 1}, 'ckpt.pt')\n",
        ),
        Invalid(
            _HEAD + "model = torch.compile(Net())\nsd = model.state_dict()\ntorch.save(sd, 'm.pt')\n",
            _HEAD + "model = torch.compile(Net())\nsd = model._orig_mod.state_dict()\ntorch.save(sd, 'm.pt')\n",
            message_contains="`_orig_mod.`",
        ),
        Invalid(
            _HEAD + "class Trainer:\n    def __init__(self, net):\n        self.model = DDP(net)\n\n"
            "    def save(self):\n        torch.save(self.model.state_dict(), 'm.pt')\n",
            _HEAD + "class Trainer:\n    def __init__(self, net):\n        self.model = DDP(net)\n\n"
            "    def save(self):\n        torch.save(self.model.module.state_dict(), 'm.pt')\n",
        ),
        Invalid(
            _HEAD + "def save(model: DDP, path):\n    torch.save(model.state_dict(), path)\n",
            _HEAD + "def save(model: DDP, path):\n    torch.save(model.module.state_dict(), path)\n",
        ),
        Invalid(
            _HEAD + "def main(args):\n    model = Net()\n    if args.distributed:\n        model = DDP(model)\n"
            "    torch.save(model.state_dict(), 'm.pt')\n",
            _HEAD + "def main(args):\n    model = Net()\n    if args.distributed:\n        model = DDP(model)\n"
            "    torch.save(getattr(model, \"module\", model).state_dict(), 'm.pt')\n",
            help_contains="when that line runs",
        ),
        Invalid(
            _HEAD + "model = Net()\nif world_size > 1:\n    model = DDP(model)\ntorch.save(model, 'm.pt')\n",
            _HEAD + "model = Net()\nif world_size > 1:\n    model = DDP(model)\n"
            "torch.save(getattr(model, \"module\", model).state_dict(), 'm.pt')\n",
        ),
        Invalid(
            _HEAD + "model = DDP(Net())\ntorch.save(model, 'm.pt')\n",
            _HEAD + "model = DDP(Net())\ntorch.save(model.module.state_dict(), 'm.pt')\n",
            help_contains="pickles the wrapper",
        ),
        Invalid(
            "import torch\nfrom torch.nn.parallel import DistributedDataParallel\n\n"
            "ddp = DistributedDataParallel(net, device_ids=[rank])\ntorch.save(ddp.cuda().state_dict(), 'm.pt')\n",
            "import torch\nfrom torch.nn.parallel import DistributedDataParallel\n\n"
            "ddp = DistributedDataParallel(net, device_ids=[rank])\ntorch.save(ddp.cuda().module.state_dict(), 'm.pt')\n",
        ),
    )

    def check(self, ctx):
        for call in ctx.calls_to("torch.save"):
            obj = saved_object(call)
            if obj is None:
                continue
            for sd_call, receiver in state_dict_calls(ctx, obj):
                value = ctx.values.of(receiver)
                if value.kind != WRAPPER or value.wrapper not in _INNER:
                    continue
                attr, prefix = _INNER[value.wrapper]
                what = ctx.code(receiver)
                if isinstance(receiver, cst.Name) and ctx.values.conditional(receiver):
                    # wrapped on one path only: `.module` would fail on the other one
                    unwrapped = f'getattr({what}, "{attr}", {what})'
                    ctx.report(
                        call,
                        _keys_headline(what, value, prefix),
                        [ctx.replace(receiver, unwrapped)],
                        SAFE,
                        help=f"{value.describe(f'`{what}`')} when that line runs; then its state_dict "
                             f"keys start with `{prefix}`; save `{unwrapped}.state_dict()`",
                    )
                    continue
                fixed = f"{what}.{attr}.state_dict()"
                ctx.report(
                    call,
                    _keys_headline(what, value, prefix),
                    [ctx.insert_at(ctx.offset(ctx.end(receiver)), f".{attr}")],
                    SAFE,
                    help=f"{value.describe(f'`{what}`')}; its state_dict keys start with `{prefix}`; "
                         f"save `{fixed}`",
                )
            for part, value in saved_values(ctx, obj):
                if value.kind != WRAPPER:
                    continue
                what = f"`{ctx.code(part)}`"
                name = WRAPPER_NAMES.get(value.wrapper, "wrapper")
                if value.wrapper not in _INNER:
                    ctx.report(call, _saved_headline(ctx.code(part), name),
                               help=f"{value.describe(what)}: `torch.save` pickles the {name} wrapper "
                                    "object; save the model's state dict instead")
                    continue
                attr, prefix = _INNER[value.wrapper]
                fixed = with_suffix(ctx, part, f".{attr}.state_dict()")
                if isinstance(part, cst.Name) and ctx.values.conditional(part):
                    fixed = f'getattr({part.value}, "{attr}", {part.value}).state_dict()'  # wrapped on one path only
                ctx.report(
                    call,
                    _saved_headline(ctx.code(part), name),
                    [ctx.replace(part, fixed)],
                    UNSAFE,
                    help=f"{value.describe(what)}: `torch.save` pickles the wrapper object (and the "
                         f"model inside it); save `{fixed}`, whose keys carry no `{prefix}` prefix",
                )


def _article(name: str) -> str:
    return "an" if name[:1].lower() in "aeiou" else "a"


def _keys_headline(what: str, value, prefix: str) -> str:
    """"`model` is a DataParallel wrapper: saved keys start with `module.`"."""
    name = WRAPPER_NAMES.get(value.wrapper, "wrapper")
    return f"{quoted_code(what, 24)} is {_article(name)} {name} wrapper: saved keys start with `{prefix}`"


def _saved_headline(what: str, name: str) -> str:
    return f"`torch.save` of {_article(name)} {name} wrapper object: {quoted_code(what, 30)}"
