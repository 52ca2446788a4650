import re

import libcst as cst

from ckptlint.analysis.calls import find_arg
from ckptlint.rules._base import Invalid, Rule, Valid

_MODULES = ("pickle", "dill", "cloudpickle", "_pickle", "cPickle", "joblib")
# File-based calls, and `dumps` whose bytes leave the function: `pickle.loads(pickle.dumps(m))`
# is a deep copy, not a checkpoint (in-memory copies were most of the noise on real code).
_FUNCS = ("dump", "load", "Unpickler", "Pickler", "dumps")
# Words in the saved object or the file argument that say "this is a model / checkpoint".
_CHECKPOINTY = re.compile(
    r"ckpt|checkpoint|state_dict|model|weights|\.pth?\b|\.bin\b|\bnet\b|network|\.pt['\"]",
    re.IGNORECASE,
)


class PickleModuleCheckpoint(Rule):
    code = "CKPT008"
    name = "pickle-module-checkpoint"
    summary = "model or checkpoint written or read with `pickle`/`dill`/`cloudpickle` directly"
    fix_safety = "none"
    security_severity = "7.5"
    requires_text = ("pickle", "dill", "joblib")
    names = ("load", "dump", "dumps", "loads", "Unpickler", "Pickler")
    modules = ("torch", "pickle", "dill", "cloudpickle", "_pickle", "cPickle", "joblib")
    docs = """
    ## What it does
    Checks for models or checkpoints written or read with `pickle`, `dill`, `cloudpickle` or
    `joblib` directly (`dump`, `load`, `Pickler`, `Unpickler`), and for
    `torch.load(..., pickle_module=...)`. A `pickle` call counts when the object or the file
    argument is recognisably a model or checkpoint (a name or path mentioning `model`, `ckpt`,
    `checkpoint`, `state_dict`, `weights`, `.pt`, ...), so pickling a vocabulary is left alone.
    `dumps` counts when its bytes leave the function (returned, written, sent, stored); an
    in-memory copy (`loads(dumps(model))`, a deep copy) is not a checkpoint and is not
    reported, nor is `loads`.

    ## Why is this bad?
    A pickled model can only be loaded by unpickling it, which runs any code the file holds,
    and it ties the file to the exact module paths of the classes that wrote it. torch's own
    format with `weights_only=True` loads tensors without running code; `safetensors` holds
    tensors only. A custom `pickle_module` for `torch.load` bypasses the weights-only
    unpickler altogether.

    ## Example
    ```python
    import pickle

    with open("model.pkl", "wb") as f:
        pickle.dump(model, f)
    ```

    ## Use instead
    ```python
    import torch

    torch.save(model.state_dict(), "model.pt")
    ```

    ## Fix safety
    No fix: the file format changes, and so does every reader of it.
    """
    valid = (
        Valid("import pickle\nwith open('vocab.pkl', 'wb') as f:\n    pickle.dump(vocab, f)\n"),
        Valid("import pickle\ncfg = pickle.loads(blob)\n"),
        Valid("import pickle\nmodel_copy = pickle.loads(pickle.dumps(model))\n"),
        Valid("import torch\ntorch.load('m.pt', weights_only=True, map_location='cpu')\n"),
        Valid("def dump(model, f):\n    pass\n\ndump(model, f)\n"),
        Valid("import cloudpickle\n\ndef clone(model):\n    blob = cloudpickle.dumps(model)\n    return cloudpickle.loads(blob)\n"),
        Valid(
            "import hashlib, pickle\n\ndef publish(checkpoint, path):\n    data = pickle.dumps(checkpoint)\n"
            "    sha = hashlib.sha256(data).hexdigest()\n    save_checkpoint(checkpoint, f'{path}-{sha[:8]}.pth')\n"
        ),
    )
    invalid = (
        Invalid("import pickle\nwith open('model.pkl', 'wb') as f:\n    pickle.dump(model, f)\n"),
        Invalid("import dill\nnet = dill.load(open(ckpt_path, 'rb'))\n"),
        Invalid("import cloudpickle as cp\ncp.dump(self.model.state_dict(), fh)\n"),
        Invalid(
            # the bytes go to a store: a checkpoint in all but name
            "import cloudpickle\n\ndef snapshot(model, store, step):\n    payload = cloudpickle.dumps(model)\n"
            "    store.put(f'ckpt-{step}', payload)\n",
            message_contains="Checkpoint written with `cloudpickle.dumps`",
        ),
        Invalid("import pickle\n\ndef export(model):\n    return pickle.dumps(model)\n"),
        Invalid(
            "import torch, dill\nsd = torch.load('m.pt', pickle_module=dill, weights_only=False, map_location='cpu')\n",
            message_contains="pickle_module",
        ),
    )

    def check(self, ctx):
        for call in ctx.calls:
            qname = ctx.call_qname(call)
            if qname is None:
                continue
            if qname == "torch.load":
                arg = find_arg(call, "pickle_module", ("f", "map_location", "pickle_module"))
                if arg is not None and hasattr(arg, "value"):
                    ctx.report(
                        call,
                        "`torch.load(..., pickle_module=...)` bypasses torch's weights-only unpickler",
                        help="`torch.load(..., pickle_module=...)` bypasses torch's weights-only "
                             "unpickler: the file can run any code; load with the default pickle "
                             "module and `weights_only=True`",
                    )
                continue
            module, _, func = qname.rpartition(".")
            if module not in _MODULES or func not in _FUNCS:
                continue
            subject = " ".join(ctx.code(a.value) for a in call.args[:2])
            if not _CHECKPOINTY.search(subject):
                continue
            if func == "dumps" and not self._bytes_leave(ctx, call):
                continue
            verb = "written" if func.startswith(("dump", "Pickler")) else "read"
            ctx.report(
                call,
                f"Checkpoint {verb} with `{qname}`: unpickling it runs any code the file holds",
                help=f"Checkpoint {verb} with `{qname}`: unpickling runs any code the file holds and "
                     "ties the file to your class paths; use `torch.save(model.state_dict(), path)` "
                     "and `torch.load(path, weights_only=True)`, or safetensors",
            )

    @staticmethod
    def _bytes_leave(ctx, call) -> bool:
        """Do the bytes of `dumps(...)` go anywhere but straight back into `loads`, or into
        a hash or a size (`hashlib.sha256(pickle.dumps(ckpt))` names a file, writes none)?"""

        def consumed(expr) -> bool:
            arg = ctx.parent(expr)
            outer = ctx.parent(arg) if isinstance(arg, cst.Arg) else None
            q = ctx.call_qname(outer) if isinstance(outer, cst.Call) else None
            return q is not None and (q.endswith(".loads") or q.startswith("hashlib.")
                                      or q in ("builtins.len", "sys.getsizeof"))

        if consumed(call):
            return False
        parent = ctx.parent(call)
        if isinstance(parent, cst.Assign) and len(parent.targets) == 1 and isinstance(parent.targets[0].target, cst.Name):
            return any(not consumed(u) for u in ctx.values.uses(parent.targets[0].target))
        return True
