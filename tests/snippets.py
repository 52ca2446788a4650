"""A corpus of snippets for the speed tests: every rule example, their fixed forms, and
cases that probe the prefilter and the triage (names in comments, strings, aliases,
annotations, f-strings, odd line endings)."""

from __future__ import annotations

from ckptlint.rules import all_rules

EXTRA = [
    "# torch.load(path) only in a comment\nimport torch\n",
    'import torch\n"""torch.load(path) only in a docstring"""\nx = "torch.load"\n',
    "import torch\nf = torch.load\nsd = f('m.pt')\n",
    "from torch import *\nsd = load('m.pt')\n",
    "from torch import load as L\nsd = L('m.pt')\n",
    "from .serialization import load\nsd = load('m.pt')\n",
    "import torch\nprint(f\"{torch.load('m.pt')}\")\n",
    "import torch\ndef f(p):\n    x: torch.load(p) = 1\n    return x\n",
    "from __future__ import annotations\nimport torch\ndef f(p: torch.load('a')) -> None:\n    pass\n",
    "import torch\nif False:\n    torch.load('m.pt')\n",
    "import torch\ndef f():\n    return\n    torch.load('m.pt')\n",
    "import torch\nsd = torch.load('m.pt')  # noqa: CKPT002\n",
    "import torch\r\nsd = torch.load('m.pt')\r\n",
    "import torch\nsd = torch.load('m.pt')",
    "import torch\nif x:\n\tsd = torch.load('ü.pt')\n",
    "import torch as t\nα = t.load('m.pt', weights_only=False)\n",
    "import torch.serialization as S\nS.load(p)\n",
    "import torch\ntorch.save(m, 'x.pt', _use_new_zipfile_serialization=False)\n",
    "from torch.utils.model_zoo import load_url\nsd = load_url(u)\n",
    "import os\nos.environ['TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'] = '1'\n",
    "from os import environ\nenviron.update(TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD='1')\n",
    "import pickle\npickle.dump(model, open('model.pkl', 'wb'))\n",
    "import cloudpickle\ncloudpickle.load(open('ckpt.pkl', 'rb'))\n",
    "import dill as d\nd.dumps(model)\n",
    "import torch\nsd = torch.load(\n",  # syntax error
    "def f(:\n    pass\n",
    "return 1\nimport torch\ntorch.load(p)\n",  # ast accepts `return` outside a function
    "from torch import (  # the loaders\n    save,\n    load,\n)\nload(p)\n",
    "from torch import (\n    save,  # comment\n    load as L)\nL(p)\n",
    "from torch import \\\n    load\nload(p)\n",
    "import torch\nsd = torch . load(p)\nsd = torch.\\\n    load(p)\n",
    "import torch\nsd = (torch.\n      load(p))\n",
    "from . import serialization\nserialization.load(p)\n",
    "from .. import serialization as s; s.load(p)\n",
    "from os import environ as E\nE['TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'] = '1'\n",
    "import os as o\no.putenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')\n",
    "import torch\n# load the weights, then model.load them\nx = 1  # load\n",
    "import torch\nx = [torch.load]\nx[0](p)\n",
    "import torch\ndef load(p):\n    return p\nload(p)\n",
    "import torch\nimport numpy as np\nw = np.load(p)\n",
    "import numpy as torch\ntorch.load(p)\n",
    "import torch\nt = torch\nt.load(p)\n",
    "import torch\ndef f(torch):\n    return torch.load(p)\n",
    "import torch\nclass A:\n    def f(self):\n        return self.load(p)\n",
    "import torch.serialization\ntorch.serialization.load(p)\n",
    "import torch\nfrom torch import serialization as ser\nser.load(p)\n",
    "import torch\ntry:\n    import torch\nexcept ImportError:\n    torch = None\ntorch.load(p)\n",
    "import torch\nfor np in [torch]:\n    np.load(p)\n",
    "import torch\nmatch x:\n    case [*np]:\n        np.load(p)\n",
    "import os, json\njson.environ = 1\nos.environ['TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'] = '1'\n",
    "import torch\nimport pickle as pk\npk.load(open('model.pkl', 'rb'))\n",
    "x = 1\n",
    "",
    # CKPT007's triggers: quoted prefixes, and integer slices with any spacing
    "sd = {k[ 7 : ]: v for k, v in state_dict.items()}\n",
    "sd = {k[21::]: v for k, v in state_dict.items()}\n",
    "sd = {k[10\n  :]: v for k, v in state_dict.items()}\n",
    "sd = {k.replace('_fsdp_wrapped_module.', ''): v for k, v in sd.items()}\n",
    'P = r"_orig_mod."\nsd = {k[len(P) :]: v for k, v in state_dict.items()}\n',
    "sd = {k[17:]: v for k, v in state_dict.items()}\n",
    # roots that resolve (aliases) and roots that never do (parameters, calls, loops)
    "import torch\nclass A:\n    def f(self, m):\n        self.save(m, 'x.pt')\n",
    "import torch\nt: object = torch\nt.save(model, 'x.pt')\n",
    "import torch\nif (t := torch.serialization):\n    t.save(model, 'x.pt')\n",
    "import torch\nm = Net()\nm.save('x.pt')\nfor t in [torch]:\n    t.save(model, 'x.pt')\n",
    "import torch\ndef f(t=torch):\n    t.save(model, 'x.pt')\n",
    # imported words whose qualified name is (not) the rule's
    "from torch.utils.cpp_extension import load\nkernels = load(name='k', sources=['k.cu'])\n",
    "from torch.serialization import load as L, save\nsd = L(p)\nsave(model, 'x.pt')\n",
    "from torch.hub import load\nm = load('repo', 'model')\n",
    "from torch.utils.model_zoo import load_url as get\nsd = get(u)\n",
    "import torch.utils.cpp_extension as ext\nk = ext.load(name='k', sources=[])\n",
]


def snippets():
    """(id, source, config) for every example and extra case."""
    out = []
    for rule in all_rules().values():
        if rule.phase != "static":
            continue
        for kind, examples in (("valid", rule.valid), ("invalid", rule.invalid)):
            for i, ex in enumerate(examples):
                out.append((f"{rule.code}-{kind}-{i}", ex.source, ex.config))
                fixed = getattr(ex, "fixed_source", None)
                if fixed:
                    out.append((f"{rule.code}-{kind}-{i}-fixed", fixed, ex.config))
    for i, src in enumerate(EXTRA):
        out.append((f"extra-{i}", src, None))
    return out
