from __future__ import annotations

import libcst as cst

from ckptlint.analysis.kinds import MODULE
from ckptlint.diagnostic import UNSAFE
from ckptlint.rules._base import Invalid, Rule, Valid
from ckptlint.analysis.calls import POSITIONAL, find_arg
from ckptlint.rules._guards import writes_to_buffer
from ckptlint.rules._saves import heuristic_note, saved_object, saved_values, with_suffix

_NET = "import torch\nimport torch.nn as nn\n\n\nclass Net(nn.Module):\n    pass\n\n\n"


class WholeModelSave(Rule):
    code = "CKPT001"
    name = "whole-model-save"
    summary = "`torch.save` of a whole `nn.Module` instead of its state dict"
    fix_safety = "unsafe"
    fix_title = "Save `.state_dict()` instead"
    triggers = ("save(",)
    # it reports only on these calls, so files without them skip LibCST (triage.py)
    qualnames = ("torch.save",)
    docs = """
    ## What it does
    Checks for `torch.save(obj, f)` where `obj` is an `nn.Module` instance (also as a value
    of a dict or list literal that is saved), rather than its state dict.

    Whether `obj` is a module is decided by evidence, strongest first: it is bound to a call
    of a class that subclasses `nn.Module` (a class of your project, found through the
    project-wide class index, or a known library constructor such as `torch.nn.*`,
    `torchvision.models.*`, `timm.create_model` or a `transformers` `*.from_pretrained`); it
    is the `.module` of a wrapper or unwrapped by `accelerator.unwrap_model` /
    `getattr(m, "module", m)`; it is a parameter annotated with a module type; or its name
    looks like a model (`model`, `net`, `*_model`, ... configurable with `model-names`, and
    switched off with `model-names = false`) and nothing says otherwise. The message says
    which evidence fired. Saving `x.state_dict()`, a dict of state dicts, tensors or numbers,
    a tensor, or the result of a call returning one never fires. Saving a
    `DataParallel`/`DistributedDataParallel` wrapper is CKPT005.

    ## Why is this bad?
    A whole-model save pickles the object: loading it needs `weights_only=False` (so the file
    can run code), and it only works while the class keeps the same import path and
    attributes. Renaming a module or moving a file breaks every old checkpoint.

    ## Example
    ```python
    model = Net()
    torch.save(model, "model.pt")
    ```

    ## Use instead
    ```python
    model = Net()
    torch.save(model.state_dict(), "model.pt")
    ```

    ## Fix safety
    Unsafe: the file's content changes from a module to a state dict, so whatever loads it
    must build the model and call `load_state_dict`.
    """
    valid = (
        Valid(_NET + "model = Net()\ntorch.save(model.state_dict(), 'm.pt')\n"),
        Valid(
            _NET + "model = Net()\nopt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
            "torch.save({'model': model.state_dict(), 'optimizer': opt.state_dict(), 'epoch': 3}, 'ckpt.pt')\n"
        ),
        Valid(_NET + "model = nn.DataParallel(Net())\ntorch.save(model.module.state_dict(), 'm.pt')\n"),
        Valid("import copy\nimport torch\n\ntorch.save(copy.deepcopy(model).state_dict(), 'm.pt')\n"),
        Valid(
            "import copy\nimport torch\n\nema_model = copy.deepcopy(model)\nema_model.eval()\n"
            "torch.save(ema_model.state_dict(), 'ema.pt')\n"
        ),
        Valid("import torch\n\nembeddings = torch.randn(10, 3)\ntorch.save(embeddings, 'emb.pt')\n"),
        Valid("import torch\n\ntorch.save(torch.zeros(3), 'z.pt')\n"),
        Valid("import torch\n\nmodel = model.state_dict()\ntorch.save(model, 'm.pt')\n"),
        Valid("import torch\n\nmodel = {'w': w, 'b': b}\ntorch.save(model, 'm.pt')\n"),
        Valid("import torch\n\ntorch.save(accelerator.get_state_dict(model), 'm.pt')\n"),
        Valid("trainer.fit(model)\ntrainer.save_checkpoint('last.ckpt')\n"),
        Valid("import torch\n\n\nclass Model:\n    pass\n\n\nmodel = Model()\ntorch.save(model, 'm.pt')\n"),
        Valid("import torch\n\ntorch.save(model, 'm.pt')\n", config={"model-names": False}),
        Valid("import torch\n\ntorch.save(features, 'f.pt')\n"),
        Valid("import torch\n\nmodel = torch.load('a.pt', weights_only=True)\ntorch.save(model, 'b.pt')\n"),
        Valid(
            "import torch\n\nto_save = model.module.state_dict() if hasattr(model, 'module') else model.state_dict()\n"
            "torch.save(to_save, 'm.pt')\n"
        ),
        Valid("import torch\n\ntorch.save({k: v.cpu() for k, v in model.state_dict().items()}, 'm.pt')\n"),
        Valid("import torch\n\ndef save(model, path):\n    torch.save(model.state_dict(), path)\n"),
        Valid("import torch\n\ntorch.save({'model': net.state_dict(), 'step': step}, 'm.pt')\n"),
        Valid("import pickle\n\npickle.dump(model, f)\n"),
        Valid("import io\nimport torch\n\ndef model_bytes(model):\n    buf = io.BytesIO()\n    torch.save(model, buf)\n    return buf\n"),
    )
    invalid = (
        Invalid(
            _NET + "model = Net()\ntorch.save(model, 'm.pt')\n",
            _NET + "model = Net()\ntorch.save(model.state_dict(), 'm.pt')\n",
            message_contains="a call of `Net`, bound at line 9",
        ),
        Invalid(
            "import torch\nimport torchvision\n\nresnet = torchvision.models.resnet18()\ntorch.save(resnet, 'r.pt')\n",
            "import torch\nimport torchvision\n\nresnet = torchvision.models.resnet18()\ntorch.save(resnet.state_dict(), 'r.pt')\n",
        ),
        Invalid(
            _NET + "class Trainer:\n    def __init__(self):\n        self.model = Net()\n\n"
            "    def save(self, path):\n        torch.save(self.model, path)\n",
            _NET + "class Trainer:\n    def __init__(self):\n        self.model = Net()\n\n"
            "    def save(self, path):\n        torch.save(self.model.state_dict(), path)\n",
        ),
        Invalid(
            _NET + "model = Net().to('cuda')\ntorch.save({'model': model, 'epoch': 3}, 'ckpt.pt')\n",
            _NET + "model = Net().to('cuda')\ntorch.save({'model': model.state_dict(), 'epoch': 3}, 'ckpt.pt')\n",
        ),
        Invalid(
            "import torch\nfrom torch import nn\n\ndef save(m: nn.Module, path):\n    torch.save(m, path)\n",
            "import torch\nfrom torch import nn\n\ndef save(m: nn.Module, path):\n    torch.save(m.state_dict(), path)\n",
            message_contains="annotated `nn.Module`",
        ),
        Invalid(
            "import torch\n\ndef save(model, path):\n    torch.save(model, path)\n",
            "import torch\n\ndef save(model, path):\n    torch.save(model.state_dict(), path)\n",
            message_contains="by its name only",
        ),
        Invalid(
            "import timm\nimport torch\n\nnet = timm.create_model('resnet50')\ntorch.save(net, 'n.pt')\n",
            "import timm\nimport torch\n\nnet = timm.create_model('resnet50')\ntorch.save(net.state_dict(), 'n.pt')\n",
        ),
        Invalid(
            "import torch\nfrom transformers import AutoModel\n\nbert = AutoModel.from_pretrained('bert-base-uncased')\n"
            "torch.save(bert, 'bert.pt')\n",
            "import torch\nfrom transformers import AutoModel\n\nbert = AutoModel.from_pretrained('bert-base-uncased')\n"
            "torch.save(bert.state_dict(), 'bert.pt')\n",
        ),
        Invalid(
            _NET + "from torch.nn.parallel import DistributedDataParallel as DDP\n\nmodel = DDP(Net())\n"
            "torch.save(model.module, 'm.pt')\n",
            _NET + "from torch.nn.parallel import DistributedDataParallel as DDP\n\nmodel = DDP(Net())\n"
            "torch.save(model.module.state_dict(), 'm.pt')\n",
        ),
        Invalid(
            "import torch\n\nunwrapped = accelerator.unwrap_model(model)\ntorch.save(unwrapped, 'm.pt')\n",
            "import torch\n\nunwrapped = accelerator.unwrap_model(model)\ntorch.save(unwrapped.state_dict(), 'm.pt')\n",
        ),
        Invalid(
            "import torch\n\ntorch.save(getattr(model, 'module', model), 'm.pt')\n",
            "import torch\n\ntorch.save(getattr(model, 'module', model).state_dict(), 'm.pt')\n",
        ),
        Invalid(
            "import torch\n\ntorch.save(clf, 'c.pt')\n",
            "import torch\n\ntorch.save(clf.state_dict(), 'c.pt')\n",
            config={"model-names": ["clf"]},
        ),
        Invalid(
            _NET + "def save(path):\n    model = Net()\n    ckpt = {'epoch': 1, 'model': model}\n    torch.save(ckpt, path)\n",
            _NET + "def save(path):\n    model = Net()\n    ckpt = {'epoch': 1, 'model': model.state_dict()}\n    torch.save(ckpt, path)\n",
            message_contains="inside the saved `ckpt`",
        ),
        Invalid(
            "import torch\nimport torch.nn as nn\n\nhead = nn.Linear(4, 2)\ntorch.save([head], 'h.pt')\n",
            "import torch\nimport torch.nn as nn\n\nhead = nn.Linear(4, 2)\ntorch.save([head.state_dict()], 'h.pt')\n",
        ),
    )

    @staticmethod
    def _to_buffer(ctx, call) -> bool:
        f = find_arg(call, "f", POSITIONAL["torch.save"])
        return isinstance(f, cst.Arg) and writes_to_buffer(ctx, f.value)

    def check(self, ctx):
        for call in ctx.calls_to("torch.save"):
            obj = saved_object(call)
            if obj is None:
                continue
            for part, value in saved_values(ctx, obj):
                if value.kind != MODULE:
                    continue
                if value.evidence == "name-heuristic" and self._to_buffer(ctx, call):
                    continue  # `torch.save(model, io.BytesIO())` to copy a model in memory
                what = f"`{ctx.code(part)}`"
                inside = "" if part is obj else " inside the saved " + (
                    f"`{ctx.code(obj)}`" if isinstance(obj, cst.Name) else "container"
                )
                ctx.report(
                    call,
                    f"{value.describe(what)}{inside}: `torch.save` pickles the whole object, so "
                    "loading it needs `weights_only=False` and the same code layout; save "
                    f"`{with_suffix(ctx, part, '.state_dict()')}`{heuristic_note(value)}",
                    [ctx.replace(part, with_suffix(ctx, part, ".state_dict()"))],
                    UNSAFE,
                )
