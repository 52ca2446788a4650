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
from ckptlint.reader.checkpoint import Checkpoint
from ckptlint.reader.inert_machine import NESTED_LOADERS
from ckptlint.reader.torch_tables import opcode_protocol

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
    unwrapped = ck.unwrapped
    code, data = allowlist.classify([g for g in ck.globals if g not in unwrapped], safe_globals)
    # TorchBind classes a `torch.ScriptObject` builds need no allowing of their own: said apart
    built = [g for g in data if g in allowlist.TORCHBIND]
    data = [g for g in data if g not in allowlist.TORCHBIND]
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
    if ck.runs_code:
        extra = f"; its pickles also {does}" if code else ""
        return ("runs compiled code it carries on load (an AOTInductor package)",
                f"It is {ck.runs_code}{extra}", False)
    if ck.pickle_error is not None:
        seen = f"; before that point it {does}{_where(ck, code)}: {RUNS_CODE}" if code else ""
        return (_headline(code, uses) if code else f"cannot prove it safe: {MAY_RUN_CODE}",
                f"Cannot prove it safe: a pickle cannot be read to its end ({ck.pickle_error}): {MAY_RUN_CODE}{seen}{also}", False)
    if ck.unverified:
        named = f"; its pickles {does}: {RUNS_CODE}" if code else f"; {MAY_RUN_CODE}"
        said = f"not proven safe: {ck.unverified}"  # the reason itself when it fits (a missing module)
        return (_headline(code, uses) if code else said if len(said) <= 100 else f"not proven safe: {MAY_RUN_CODE}",
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
                f"It {_data_note(data)}{_built(built)}: `torch.load(weights_only=True)` refuses the file until they are "
                f"allowed, e.g. `with {allowlist.safe_globals_call(data, ck.implied)}:`; to accept them here, add "
                f"them to `safe-globals`{_refusals(ck, unwrapped, '; also, ')[1]}", True)
    headline, refused = _refusals(ck, unwrapped, "")
    if refused:
        return headline, refused[:1].upper() + refused[1:], True
    return None


def _built(built: List[str]) -> str:
    if not built:
        return ""
    return (f"; `torch.ScriptObject` builds {backticked(built)} ("
            + "; ".join(sorted({allowlist.TORCHBIND[g] for g in built})) + ")")


def _refusals(ck: Checkpoint, unwrapped, lead: str) -> Tuple[str, str]:
    """(headline, help) of what else makes ``torch.load(weights_only=True)`` refuse a file
    that runs no code: nested loaders (their content was read and judged) and opcodes its
    unpickler lacks; ("", "") when nothing does."""
    parts, causes = [], []
    if unwrapped:
        loaders = "; ".join(f"`{g}` ({NESTED_LOADERS[g]})" for g in sorted(unwrapped))
        parts.append(f"`torch.load(weights_only=True)` refuses it: it holds nested archives or pickles loaded by "
                     f"{loaders}; what they hold was read too and is plain data (nothing outside the allowlist), "
                     "so `weights_only=False` loads it without calling code from the file; re-save that data "
                     "(e.g. `torch.save(obj.state_dict())`) to load it weights-only")
        causes.append("nested archives of plain data")
    ops = sorted(ck.refused_ops, key=lambda o: (opcode_protocol(o), o))
    if ops:
        protocol = max(opcode_protocol(o) for o in ops)
        why = f" (pickle protocol {protocol})" if protocol > 2 else ""
        causes.append(f"pickle protocol {protocol} opcodes" if protocol > 2 else f"opcode `{ops[0]}`")
        parts.append(f"`torch.load(weights_only=True)` refuses it: its pickle uses {backticked(ops[:4])}"
                     f"{' and more' if len(ops) > 4 else ''}{why}, which the weights-only unpickler does not read; "
                     "it loads only with `weights_only=False` (re-save with torch.save's default `pickle_protocol=2`)")
    if not parts:
        return "", ""
    return f"`weights_only=True` refuses it: {' and '.join(causes)}", lead + "; ".join(parts)
