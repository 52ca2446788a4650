from __future__ import annotations

from ckptlint.rules._base import Invalid, Rule, Valid
import libcst as cst

from ckptlint.analysis.calls import POSITIONAL, find_arg
from ckptlint.rules._guards import (
    callers_guarded, enclosing_function, rank_guarded, reachable_functions, writes_to_buffer,
)

_INIT = (
    "torch.distributed.init_process_group",
    "torch.distributed.distributed_c10d.init_process_group",
    "deepspeed.init_distributed",
)


class UnguardedDistributedSave(Rule):
    code = "CKPT050"
    name = "unguarded-distributed-save"
    summary = "`torch.save` in a distributed script with no rank-0 guard"
    default_enabled = False
    fix_safety = "none"
    requires_text = ("init_process_group", "init_distributed")
    # it reports only on these calls, so files without them skip LibCST (triage.py)
    qualnames = ("torch.save",)
    docs = """
    ## What it does
    In a file that initialises a process group (`torch.distributed.init_process_group`,
    `deepspeed.init_distributed`), checks for `torch.save` calls that are not under a rank
    test (`if rank == 0:`, `if dist.get_rank() == 0:`, `if is_main_process():`, ...), not in a
    function decorated `@rank_zero_only`, not after an early `if rank != 0: return`, and not
    in a function named for it (`save_on_master`).

    ## Why is this bad?
    Every rank runs the same code: all of them write the same file at once. The writes race,
    and a reader can see a file that is half one rank's and half another's, or truncated.

    ## Example
    ```python
    dist.init_process_group("nccl")
    ...
    torch.save(model.module.state_dict(), "model.pt")
    ```

    ## Use instead
    ```python
    if dist.get_rank() == 0:
        torch.save(model.module.state_dict(), "model.pt")
    ```

    ## Fix safety
    No fix: the right guard depends on the launcher.
    """
    valid = (
        Valid(
            "import torch\nimport torch.distributed as dist\n\ndef test_ddp():\n    dist.init_process_group('gloo')\n\n"
            "def test_save():\n    torch.save(sd, 'm.pt')\n"
        ),
        Valid(
            "import io, torch\nimport torch.distributed as dist\n\ndist.init_process_group('nccl')\n"
            "buffer = io.BytesIO()\ntorch.save(sd, buffer)\n"
        ),
        Valid(
            "import torch\nimport torch.distributed as dist\n\nclass Trainer:\n    def setup(self):\n"
            "        dist.init_process_group('nccl')\n        self.train()\n\n    def train(self):\n"
            "        if self.rank == 0:\n            self.save_model()\n\n    def save_model(self):\n"
            "        torch.save(self.ckpt, 'last.pt')\n"
        ),
        Valid(
            "import torch\nimport torch.distributed as dist\n\ndist.init_process_group('nccl')\n"
            "if dist.get_rank() == 0:\n    torch.save(sd, 'm.pt')\n"
        ),
        Valid("import torch\n\ntorch.save(sd, 'm.pt')\n"),
        Valid(
            "import torch\nimport torch.distributed as dist\n\ndist.init_process_group('nccl')\n\n"
            "def save(sd, args):\n    if args.local_rank not in (-1, 0):\n        return\n    torch.save(sd, 'm.pt')\n"
        ),
        Valid(
            "import torch\nimport torch.distributed as dist\n\ndist.init_process_group('nccl')\n\n"
            "def save_on_master(*args, **kwargs):\n    torch.save(*args, **kwargs)\n"
        ),
        Valid(
            "import torch\nimport torch.distributed as dist\n\ndist.init_process_group('nccl')\n\n"
            "@rank_zero_only\ndef save(sd):\n    torch.save(sd, 'm.pt')\n"
        ),
    )
    invalid = (
        Invalid(
            "import torch\nimport torch.distributed as dist\n\ndef setup():\n    dist.init_process_group('nccl')\n"
            "    train()\n\ndef train():\n    torch.save(sd, 'm.pt')\n"
        ),
        Invalid(
            "import torch\nimport torch.distributed as dist\n\ndist.init_process_group('nccl')\n"
            "torch.save(model.module.state_dict(), 'm.pt')\n"
        ),
        Invalid(
            "import torch\nfrom torch.distributed import init_process_group\n\n"
            "def main():\n    init_process_group(backend='nccl')\n    for epoch in range(3):\n"
            "        torch.save(sd, f'ckpt_{epoch}.pt')\n"
        ),
    )

    def check(self, ctx):
        inits = ctx.calls_to(*_INIT)
        if not inits:
            return
        reachable = reachable_functions(ctx, inits)
        for call in ctx.calls_to("torch.save"):
            if rank_guarded(ctx, call):
                continue
            f = find_arg(call, "f", POSITIONAL["torch.save"])
            if isinstance(f, cst.Arg) and writes_to_buffer(ctx, f.value):
                continue
            fn = enclosing_function(ctx, call)
            if reachable is not None and (fn is None or not any(fn is r for r in reachable)):
                continue  # not on a path that runs after the process group starts
            if fn is not None and callers_guarded(ctx, fn):
                continue
            ctx.report(
                call,
                "`torch.save` with no rank-0 guard in a file that starts a process group",
                help="Every rank writes the same file at once; wrap it in `if dist.get_rank() == 0:`",
            )
