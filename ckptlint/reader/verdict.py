"""What a checkpoint's pickles do when loaded (CKPT101), in words a reader can act on.

An error says "runs code" whenever some global the file names is neither in torch's
weights-only allowlist, nor a reviewed data type (``allowlist.DATA``), nor in the project's
``safe-globals``; "cannot prove it safe ... may run code" when a pickle could not be read to
its end (fail closed). Reviewed data types alone are a warning that says how to allow them.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from ckptlint.reader import allowlist
from ckptlint.reader.inert_machine import CALLS, CONSTRUCTS, IMPORTS
from ckptlint.reader.reader import Checkpoint

RUNS_CODE = "loading this file with `weights_only=False` runs code"
MAY_RUN_CODE = "loading it with `weights_only=False` may run code"


def backticked(names) -> str:
    """`a`, `b`: names as messages show them."""
    return ", ".join(f"`{n}`" for n in names)


def what_it_does(code: List[str], uses: Dict[str, str]) -> str:
    """`calls `a`; constructs `b`; imports `c`` for the code globals, strongest use first."""
    parts = []
    for use in (CALLS, CONSTRUCTS, IMPORTS):
        names = [g for g in code if uses.get(g, IMPORTS) == use]
        if names:
            parts.append(f"{use} {backticked(names)}")
    return "; ".join(parts)


def _where(ck: Checkpoint, code: List[str]) -> str:
    """` in <pickle>, <pickle>` when the file holds several pickles (or items)."""
    if len(ck.pickles) < 2 and not any(p.item for p in ck.pickles):
        return ""
    places = [p.where for p in ck.pickles if any(g in p.globals for g in code)]
    if not places:
        return ""
    more = f" and {len(places) - 3} more" if len(places) > 3 else ""
    return " in " + ", ".join(f"`{w}`" for w in places[:3]) + more


def _data_note(data: List[str]) -> str:
    return (f"needs allowlisting: {backticked(data)} (data types: "
            + "; ".join(sorted({allowlist.DATA[g] for g in data})) + ")")


def _first(names: List[str], limit: int = 28) -> str:
    """"`a.b`", or "`a.b` and 3 more": a headline's short list."""
    shown = names[0] if len(names[0]) <= limit else names[0][: limit - 1] + "…"
    return f"`{shown}`" + (f" and {len(names) - 1} more" if len(names) > 1 else "")


def _headline(code: List[str], uses: Dict[str, str]) -> str:
    """"calls `posix.system`: runs code with `weights_only=False`": the strongest use first,
    its name cut to what the headline has room for."""
    use = next(u for u in (CALLS, CONSTRUCTS, IMPORTS) if any(uses.get(g, IMPORTS) == u for g in code))
    first = [g for g in code if uses.get(g, IMPORTS) == use] + [g for g in code if uses.get(g, IMPORTS) != use]
    tail = ": runs code with `weights_only=False`"
    more = f" and {len(first) - 1} more" if len(first) > 1 else ""
    return f"{use} {_first(first, 100 - len(use) - len(more) - len(tail) - 3)}{tail}"


def unsafe_pickle(ck: Checkpoint, safe_globals) -> Optional[Tuple[str, str, bool]]:
    """(headline, help, data only) of the file's CKPT101, or None when every global is
    allowed; data only: what it names is reviewed data types that need allowing, nothing that
    runs code."""
    if ck.format == "dcp-metadata":  # DCP reads it with pickle.load: its own classes are expected
        safe_globals = list(safe_globals) + sorted(allowlist.DCP_METADATA)
    code, data = allowlist.classify(ck.globals, safe_globals)
    uses = ck.uses
    does = what_it_does(code, uses)
    trusted = ("; classes of your own that you trust go in `safe-globals`"
               if code and not any(allowlist.is_dangerous(g) for g in code) else "")
    also = f"; it also {_data_note(data)}" if data else ""
    crafted = [p.where for p in ck.pickles if p.straddled]
    if crafted:
        failed = f" (one reading stops: {ck.pickle_error})" if ck.pickle_error else ""
        reads = (f"read one way, it {does}: {RUNS_CODE}" if code else
                 f"neither reading names code outside the allowlist, but a reader that buffers "
                 f"differently may run something else: {MAY_RUN_CODE}")
        return ("crafted pickle framing: " + ("runs code with `weights_only=False`" if code else
                                              f"pickle readers disagree on what it runs"),
                f"Crafted pickle framing in {backticked(crafted)}: a frame ends inside an instruction, "
                f"so pickle readers disagree on what it runs{failed}; {reads}{also}", False)
    if ck.pickle_error is not None:
        seen = f"; before that point it {does}{_where(ck, code)}: {RUNS_CODE}" if code else ""
        return (_headline(code, uses) if code else f"cannot prove it safe: {MAY_RUN_CODE}",
                f"Cannot prove it safe: a pickle cannot be read to its end ({ck.pickle_error}): {MAY_RUN_CODE}{seen}{also}", False)
    if ck.unverified:
        named = f"; its pickles {does}: {RUNS_CODE}" if code else f"; {MAY_RUN_CODE}"
        return (_headline(code, uses) if code else f"not proven safe: {MAY_RUN_CODE}",
                f"Not proven safe: {ck.unverified}{named}{also}", False)
    if ck.torchscript:
        extra = f"; its pickles also {does}" if code else ""
        return ("a TorchScript archive: loading it runs code it carries",
                "`torch.load` hands a TorchScript archive to `torch.jit.load`, so loading it runs "
                "code it carries (TorchScript `__setstate__` methods on load, `forward` when called); "
                f"`weights_only=True` refuses it{extra}", False)
    if code:
        return (_headline(code, uses),
                f"It {does} on load{_where(ck, code)}: {RUNS_CODE}{trusted}{also}", False)
    if data:
        return (f"needs allowlisting for `weights_only=True`: {_first(data, 36)}",
                f"It {_data_note(data)}: `torch.load(weights_only=True)` refuses the file until they are "
                f"allowed, e.g. `with {allowlist.safe_globals_call(data, ck.implied)}:`; to accept them here, add "
                "them to `safe-globals`", True)
    return None
