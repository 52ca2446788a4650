from __future__ import annotations

import re

import libcst as cst

from ckptlint.analysis.calls import POSITIONAL, find_arg
from ckptlint.rules._base import Invalid, Rule, Valid
from ckptlint.analysis.kinds import OTHER, TENSOR
from ckptlint.rules._saves import saved_object
from ckptlint.rules._guards import enclosing_function, in_training_loop, writes_to_buffer

_TEMPISH = re.compile(r"tmp|temp|buf|bytesio|\.part\b", re.IGNORECASE)
_MOVES = ("os.replace", "os.rename", "shutil.move")


class NonAtomicSave(Rule):
    code = "CKPT052"
    name = "non-atomic-save"
    summary = "`torch.save` straight to the final path inside a training loop"
    default_enabled = False
    fix_safety = "none"
    # it reports only on these calls, so files without them skip LibCST (triage.py)
    qualnames = ("torch.save",)
    docs = """
    ## What it does
    Checks for `torch.save` inside a training loop (a `for`/`while` loop whose header counts
    epochs, steps or iterations, as in `for epoch in range(...)`, `range(max_iter)` or
    `while global_step < total`, or whose body calls `.backward()` / `optimizer.step()`) that writes
    straight to its destination: the path does not look temporary (`tmp`, `temp`, ...) and
    the function does not move a file into place (`os.replace`, `os.rename`, `shutil.move`,
    `Path.replace` / `Path.rename`).

    ## Why is this bad?
    A job killed (preempted, out of memory, out of time) in the middle of the write leaves a
    truncated file under the final name, often overwriting the last good checkpoint, and the
    resumed run then fails to load it.

    ## Example
    ```python
    for epoch in range(epochs):
        train_one_epoch()
        torch.save(model.state_dict(), "last.pt")
    ```

    ## Use instead
    ```python
    for epoch in range(epochs):
        train_one_epoch()
        torch.save(model.state_dict(), "last.pt.tmp")
        os.replace("last.pt.tmp", "last.pt")
    ```

    ## Fix safety
    No fix.
    """
    valid = (
        Valid("import torch\ntorch.save(sd, 'last.pt')\n"),
        Valid(
            "import os, torch\nfor epoch in range(3):\n    torch.save(sd, 'last.pt.tmp')\n"
            "    os.replace('last.pt.tmp', 'last.pt')\n"
        ),
        Valid(
            "import os, torch\n\ndef train():\n    for epoch in range(3):\n        torch.save(sd, tmp_path)\n"
            "        os.replace(tmp_path, path)\n"
        ),
        Valid("import io, torch\nfor step in range(9):\n    out = io.BytesIO()\n    torch.save(t, out)\n"),
        Valid("import torch\nfor name, sd in adapters.items():\n    torch.save(sd, f'{name}.bin')\n"),
        Valid("import torch\nfor step in range(9):\n    samples = torch.cat(outs)\n    torch.save(samples, f'sample-{step}.pt')\n"),
        Valid("import torch\nretry = 3\nwhile retry > 0:\n    try:\n        torch.save(sd, path)\n        break\n"
              "    except OSError:\n        retry -= 1\n"),
        Valid(
            # averaging the n best checkpoints: a loop over (epoch, value) pairs, not training
            "import torch\n\ndef average_nbest(nbest_epochs, out_dir):\n"
            "    for ph, cr, epoch_and_values in nbest_epochs:\n        avg = None\n"
            "        for e, _ in epoch_and_values:\n            states = torch.load(out_dir / f'{e}epoch.pth')\n"
            "            avg = states if avg is None else {k: avg[k] + states[k] for k in avg}\n"
            "        torch.save(avg, out_dir / f'{ph}.{cr}.ave.pth')\n"
        ),
    )
    invalid = (
        Invalid("import torch\nfor epoch in range(3):\n    torch.save(model.state_dict(), 'last.pt')\n"),
        Invalid(
            "import torch\n\ndef fit(model, cfg):\n    for i in range(cfg.start_iter, cfg.max_iter):\n"
            "        if i % 1000 == 0:\n            torch.save({'model': model.state_dict(), 'iter': i}, cfg.ckpt)\n"
        ),
        Invalid(
            "import torch\n\ndef train(model, path):\n    while True:\n        loss.backward()\n"
            "        torch.save({'model': model.state_dict()}, path)\n"
        ),
    )

    def check(self, ctx):
        for call in ctx.calls_to("torch.save"):
            if not in_training_loop(ctx, call):
                continue
            f = find_arg(call, "f", POSITIONAL["torch.save"])
            if not isinstance(f, cst.Arg) or _TEMPISH.search(ctx.code(f.value)) or writes_to_buffer(ctx, f.value):
                continue
            obj = saved_object(call)
            if obj is not None and ctx.values.of(obj).kind in (TENSOR, OTHER):
                continue  # a sample or a metric written each step, not a checkpoint
            scope = enclosing_function(ctx, call) or ctx.module
            if self._moves_into_place(ctx, scope):
                continue
            ctx.report(
                call,
                "`torch.save` straight to the final path inside a loop",
                help="A crash during the write leaves a truncated checkpoint; write to a temporary "
                     "file and `os.replace` it",
            )

    def _moves_into_place(self, ctx, scope) -> bool:
        for call in ctx.calls:
            if ctx.call_qname(call) in _MOVES or (
                isinstance(call.func, cst.Attribute) and call.func.attr.value in ("replace", "rename")
                and len(call.args) == 1
            ):
                p = call
                while p is not None and p is not scope:
                    p = ctx.parent(p)
                if p is scope:
                    return True
        return False
