"""What the checkpoint file a `torch.load` names holds, when that file is at hand.

A load of a literal path (or of a constant holding one) that names a file in the project, or
a file declared under `[[tool.ckptlint.checkpoints]]`, is read with the runtime phase's own
reader (torch-free, metadata only, never unpickled). Its globals then say exactly what
`weights_only=True` needs: nothing (a plain state dict), reviewed data types to allow with
`torch.serialization.safe_globals([...])`, or code, which no allowlist should let through.
The result depends on the file, so the lint records it for the cache (deps.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

from ckptlint.rules._pairing import site_of, site_path


@dataclass(frozen=True)
class Known:
    shown: str  # the path as the code names it
    path: str  # the file read
    code: Tuple[str, ...]  # globals that run code on load
    data: Tuple[str, ...]  # reviewed data types weights_only=True needs allowed
    readable: bool  # False: not a checkpoint the reader could read to the end
    uses: Tuple[Tuple[str, str], ...] = ()  # global -> calls | constructs | imports
    implied: Tuple[str, ...] = ()  # classes it builds without naming them (numpy dtypes)

    def safe_globals_call(self) -> str:
        from ckptlint.reader.allowlist import safe_globals_call

        return safe_globals_call(self.data, self.implied)

    def modules(self) -> List[str]:
        """Top-level packages the `safe_globals` list names (to import)."""
        return sorted({name.split(".", 1)[0] for name in self.data + self.implied})


def known_checkpoint(ctx, load) -> Optional[Known]:
    """The file `load` reads, read, when the code names it and it exists; else None."""
    site = site_of(ctx, load, "loads")
    if site is None:
        return None
    shown = site_path(ctx.project, site["path"])
    if not shown:
        return None
    path = _locate(ctx, shown)
    if path is None:
        return None
    from ckptlint.analysis.project import dep_key
    from ckptlint.reader.allowlist import classify
    from ckptlint.reader.reader import read_checkpoint

    if ctx.project is not None:  # the result is valid while this file is unchanged
        ctx.project.consulted.add(dep_key("file", path))
    ck = read_checkpoint(path)
    code, data = classify(ck.globals, list(getattr(ctx.settings, "safe_globals", ())) + _entry_globals(ctx, path))
    readable = ck.pickle_error is None and not ck.not_checkpoint and not ck.unverified and not ck.torchscript
    return Known(shown, path, tuple(code), tuple(data), readable and bool(ck.pickles),
                 tuple(sorted(ck.uses.items())), tuple(sorted(ck.implied)))


def _locate(ctx, shown: str) -> Optional[str]:
    """The file a path in the code names: absolute, or relative to the project root or to
    the linted file's folder, or a configured checkpoint's path."""
    root = Path(getattr(ctx.settings, "root", None) or os.getcwd())
    here = Path(ctx.path).parent
    candidates = [Path(shown)] if os.path.isabs(shown) else [root / shown, here / shown]
    for entry in getattr(ctx.settings, "checkpoints", None) or ():
        if isinstance(entry, dict) and entry.get("path") in (shown, os.path.normpath(shown)):
            candidates.append(root / entry["path"])
    for candidate in candidates:
        if candidate.is_file():
            return str(candidate.resolve())
    return None


def _entry_globals(ctx, path: str) -> List[str]:
    """The `safe-globals` of the configured checkpoint entry for this file."""
    root = Path(getattr(ctx.settings, "root", None) or os.getcwd())
    out: List[str] = []
    for entry in getattr(ctx.settings, "checkpoints", None) or ():
        if isinstance(entry, dict) and isinstance(entry.get("path"), str):
            if str((root / entry["path"]).resolve()) == path:
                out += [g for g in entry.get("safe-globals", []) if isinstance(g, str)]
    return out
