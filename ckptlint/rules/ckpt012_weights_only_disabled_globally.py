from __future__ import annotations

import libcst as cst

from ckptlint.analysis.calls import string_value
from ckptlint.rules._base import Invalid, Rule, Valid

VAR = "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"
_OFF = {"", "0", "false", "no", "off", "n"}


def _turns_on(value) -> bool:
    """A literal that leaves the switch off (`"0"`) does not count; anything else might."""
    text = string_value(value)
    return text is None or text.strip().lower() not in _OFF


class WeightsOnlyDisabledGlobally(Rule):
    code = "CKPT012"
    name = "weights-only-disabled-globally"
    summary = "code sets `TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`"
    fix_safety = "none"
    security_severity = "9.8"
    requires_text = (VAR,)
    names = ("environ", "putenv")
    modules = ("os", "posix")
    docs = """
    ## What it does
    Checks for code that sets the `TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD` environment variable
    (`os.environ[...] = ...`, `os.environ.setdefault`, `os.environ.update`, `os.putenv`).

    ## Why is this bad?
    With it set, every `torch.load` in the process that does not say `weights_only=True`
    unpickles arbitrary objects again, including loads deep inside libraries. One line turns
    the safe default of torch 2.6+ off for the whole program.

    ## Example
    ```python
    import os

    os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
    ```

    ## Use instead
    Load the one file that needs more with an explicit allowlist:
    ```python
    with torch.serialization.safe_globals([MyConfig]):
        ckpt = torch.load(path, weights_only=True)
    ```

    ## Fix safety
    No fix: removing the line may break a load that relies on it.
    """
    valid = (
        Valid("import os\nos.environ['TORCH_HOME'] = '/cache'\n"),
        Valid("import os\nos.environ['TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'] = '0'\n"),
        Valid("import os\nflag = os.environ.get('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD')\n"),
        Valid("env = {}\nenv['TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'] = '1'\n"),
    )
    invalid = (
        Invalid("import os\nos.environ['TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'] = '1'\n"),
        Invalid("from os import environ\nenviron.setdefault('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')\n"),
        Invalid("import os\nos.environ.update({'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD': '1'})\n"),
        Invalid("import os\nos.environ.update(TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD='true')\n"),
        Invalid("import os\nos.putenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')\n"),
    )

    def _message(self):  # the help; HEADLINE below says what is wrong
        return (
            f"Setting `{VAR}` makes every `torch.load` in the process that omits "
            "`weights_only=True` unpickle arbitrary code; allow the classes one file needs "
            "with `torch.serialization.safe_globals([...])` instead"
        )

    def check(self, ctx):
        for node in ctx.nodes(cst.Assign):
            for t in node.targets:
                sub = t.target
                if (
                    isinstance(sub, cst.Subscript)
                    and ctx.qualified_name(sub.value) == "os.environ"
                    and len(sub.slice) == 1
                    and isinstance(sub.slice[0].slice, cst.Index)
                    and string_value(sub.slice[0].slice.value) == VAR
                    and _turns_on(node.value)
                ):
                    ctx.report(node, HEADLINE, help=self._message())
        for call in ctx.calls:
            qname = ctx.call_qname(call)
            if qname == "os.putenv" or qname == "os.environ.setdefault":
                if len(call.args) >= 2 and string_value(call.args[0].value) == VAR and _turns_on(call.args[1].value):
                    ctx.report(call, HEADLINE, help=self._message())
            elif qname == "os.environ.update":
                for a in call.args:
                    if a.keyword is not None and a.keyword.value == VAR and _turns_on(a.value):
                        ctx.report(call, HEADLINE, help=self._message())
                    elif isinstance(a.value, cst.Dict):
                        for el in a.value.elements:
                            if isinstance(el, cst.DictElement) and string_value(el.key) == VAR and _turns_on(el.value):
                                ctx.report(call, HEADLINE, help=self._message())


HEADLINE = f"Setting `{VAR}` makes `torch.load` unpickle any code by default"
