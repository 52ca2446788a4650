from __future__ import annotations

import re

import libcst as cst

from ckptlint.analysis.calls import string_value
from ckptlint.analysis.kinds import STATE_DICT
from ckptlint.rules._shared import clip
from ckptlint.rules._base import Invalid, Rule, Valid
from ckptlint.rules._saves import saved_object

_META = re.compile(
    r"version|arch|config|cfg|args|hparam|hyper|meta|model_name|model_type|spec"
    r"|size|dim|layers|hidden|heads|vocab|dictionary|num_|kwargs|param",
    re.IGNORECASE,
)


def _entries(ctx, obj, call):
    """[(key, value expr)] of the dict literal saved (directly or through a name bound to
    it), with the entries set by `ckpt["k"] = v` between the binding and the save (also under
    an `if`); None when it is no such dict or a key is not a string literal."""
    name = None
    if isinstance(obj, cst.Name):
        binds, _ = ctx.values.bindings(obj)
        if len(binds) == 1 and binds[0].kind == "assign":
            name, obj = binds[0], binds[0].value
    if not isinstance(obj, cst.Dict):
        return None
    out = []
    for el in obj.elements:
        key = string_value(el.key) if isinstance(el, cst.DictElement) else None
        if key is None:
            return None
        out.append((key, el.value))
    if name is not None:
        scope, lo, hi = ctx.scope_of(name.node), ctx.start(name.node), ctx.start(call)
        for node in ctx.nodes(cst.Assign):
            for t in node.targets:
                sub = t.target
                if (isinstance(sub, cst.Subscript) and isinstance(sub.value, cst.Name)
                        and sub.value.value == name.name and ctx.scope_of(sub) is scope
                        and (lo.row, lo.column) < (ctx.start(sub).row, ctx.start(sub).column) < (hi.row, hi.column)
                        and len(sub.slice) == 1 and isinstance(sub.slice[0].slice, cst.Index)):
                    key = string_value(sub.slice[0].slice.value)
                    if key is None:
                        return None
                    out.append((key, node.value))
    return out


_MODELISH = re.compile(r"model|net|state_dict|weights|ema|generator|encoder|decoder|backbone", re.IGNORECASE)


def _model_weights(ctx, key: str, value) -> bool:
    """A dict entry holding a model's state dict (not only an optimizer's or a scheduler's)."""
    if ctx.values.of(value).kind != STATE_DICT:
        return False
    if _MODELISH.search(key):
        return True
    if isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute):
        receiver = value.func.value
        return ctx.values.of(receiver).kind in ("module", "wrapper")
    return False


class CheckpointWithoutMetadata(Rule):
    code = "CKPT051"
    name = "checkpoint-without-metadata"
    summary = "a checkpoint dict saved without any version or architecture metadata"
    default_enabled = False
    fix_safety = "none"
    # it reports only on these calls, so files without them skip LibCST (triage.py)
    qualnames = ("torch.save",)
    docs = """
    ## What it does
    Checks for `torch.save` of a dict literal that holds a model's state dict (a
    checkpoint) but no key that describes what it is: none of its keys mentions a version, an
    architecture, a config, args or hyper-parameters (`version`, `arch`, `config`, `cfg`,
    `args`, `hparams`, `hyper_parameters`, `meta`, `model_name`, `hidden_size`, `num_layers`,
    ...), and no value that does (`self.get_config()`, `constructor_kwargs`). Dicts with `**`
    entries or computed keys are left alone.

    ## Why is this bad?
    A year later nobody knows which code, which model size or which preprocessing the
    weights belong to, and loading them into the wrong architecture fails (or, with
    `strict=False`, half-succeeds).

    ## Example
    ```python
    torch.save({"model": model.state_dict(), "epoch": epoch}, path)
    ```

    ## Use instead
    ```python
    torch.save({"model": model.state_dict(), "epoch": epoch, "config": vars(args),
                "version": 2}, path)
    ```

    ## Fix safety
    No fix: only the author knows what metadata describes the model.
    """
    valid = (
        Valid("import torch\ntorch.save({'model': model.state_dict(), 'config': cfg}, p)\n"),
        Valid("import torch\ntorch.save({'state_dict': model.state_dict(), 'arch': 'resnet50'}, p)\n"),
        Valid("import torch\ntorch.save({'model': model.state_dict(), **extra}, p)\n"),
        Valid("import torch\ntorch.save(model.state_dict(), p)\n"),
        Valid("import torch\ntorch.save({'mean': mean, 'std': std}, p)\n"),
        Valid("import torch\nckpt = {'model': model.state_dict(), 'hparams': hp}\ntorch.save(ckpt, p)\n"),
        Valid("import torch\ntorch.save({'lr_scheduler': sched.state_dict(), 'optimizer': opt.state_dict()}, p)\n"),
        Valid("import torch\ntorch.save({'state_dict': self.state_dict(), 'data': self._get_constructor_parameters()}, p)\n"),
        Valid("import torch\ntorch.save({'state_dict': self.state_dict(), 'hidden_size': 512, 'nlayers': 2}, p)\n"),
        Valid(
            "import torch\n\ndef save(model, path, cfg):\n    ckpt = {'model': model.state_dict()}\n"
            "    if cfg is not None:\n        ckpt['config'] = cfg\n    torch.save(ckpt, path)\n"
        ),
    )
    invalid = (
        Invalid("import torch\ntorch.save({'model': model.state_dict(), 'epoch': epoch}, p)\n"),
        Invalid(
            # the model's weights are set under a condition, after the dict is built
            "import torch\n\ndef save(model, ema, path, epoch):\n    ckpt = {'epoch': epoch}\n"
            "    if ema is not None:\n        ckpt['model'] = ema.state_dict()\n    else:\n"
            "        ckpt['model'] = model.state_dict()\n    torch.save(ckpt, path)\n",
            message_contains="keys `epoch`, `model` and no metadata",
        ),
        Invalid(
            "import torch\nckpt = {'model': model.state_dict(), 'optimizer': opt.state_dict()}\ntorch.save(ckpt, p)\n"
        ),
    )

    def check(self, ctx):
        for call in ctx.calls_to("torch.save"):
            obj = saved_object(call)
            entries = _entries(ctx, obj, call) if obj is not None else None
            if not entries:
                continue
            keys = list(dict.fromkeys(k for k, _ in entries))
            if any(_META.search(k) for k in keys):
                continue
            values = [ctx.code(v) for _, v in entries]
            if any(_META.search(v) and "state_dict" not in v for v in values):
                continue  # `"data": self._get_constructor_parameters()`
            if not any(_model_weights(ctx, k, v) for k, v in entries):
                continue  # e.g. only optimizer / scheduler state: not a model checkpoint
            shown = ", ".join(f"`{k}`" for k in keys)
            if len(shown) > 50:
                shown = ", ".join(f"`{k}`" for k in keys[:2]) + f" and {len(keys) - 2} more"
            ctx.report(
                call,
                f"Checkpoint saved with keys {clip(shown, 60)} and no metadata",
                help=f"Checkpoint saved with keys {', '.join(f'`{k}`' for k in keys)} and no metadata: "
                     "add what it needs to be rebuilt (e.g. `config`, `arch`, `version`)",
            )
