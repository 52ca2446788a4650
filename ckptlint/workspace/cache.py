"""The per-file result cache (like ruff's), under `.ckptlint_cache/` at the project root.

One JSON file per *bucket*: ckptlint version + effective settings + enabled rules. In it, per
absolute path: the file's content hash, its (mtime_ns, size) stamp, its module name, its
diagnostics, and optional extra per-file data (e.g. its class-index entry; a plain dict).

- Never stale: an entry is used when the stamp matches, or else when the content hash does.
  A stamp is only trusted when the file is older than the run that wrote it by more than
  the file system's timestamp granularity (git's "racy" rule); a fresher file is hashed.
- Safe under concurrent runs: a bucket is written to a temporary file and renamed over the
  old one, after merging in what another run may have written meanwhile; a reader sees the
  old or the new file, never half of one. Unreadable or foreign files count as empty.
- JSON, not pickle: a cache folder can come with a repository, and loading it must not run
  code. Loading it imports neither libcst nor torch.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from ckptlint import __version__
from ckptlint.diagnostic import Diagnostic, Edit, Fix, Location
from ckptlint.rules import plugin_fingerprint

CACHE_DIR_NAME = ".ckptlint_cache"
ENV_VAR = "CKPTLINT_CACHE_DIR"
FORMAT = 3  # 2: per-module project dependencies (deps.py); 3: help texts
RACY_NS = 2_000_000_000  # coarsest common mtime granularity (FAT: 2 s)

_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by ckptlint.\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)


try:  # hashlib loads OpenSSL first (~10 ms of start-up); blake2 is built in
    from _blake2 import blake2b as _blake2b
except ImportError:  # pragma: no cover - other Pythons
    from hashlib import blake2b as _blake2b


def content_hash(data: bytes) -> str:
    return _blake2b(data, digest_size=16).hexdigest()


def resolve_cache_dir(cli_value: Optional[str], settings, cwd: Path) -> Path:
    """--cache-dir, then $CKPTLINT_CACHE_DIR, then `cache-dir` in the config (relative to
    its folder), then `.ckptlint_cache` in the project root (the config's folder, or cwd)."""
    if cli_value:
        return Path(cwd, cli_value)
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(cwd, env)
    root = Path(settings.root) if settings is not None else cwd
    if settings is not None and settings.cache_dir:
        return root / settings.cache_dir
    return root / CACHE_DIR_NAME


# --- diagnostics <-> JSON (lossless, unlike the user-facing JSON) --------------------------------
def _loc(loc: Optional[Location]):
    return None if loc is None else [loc.row, loc.column]


def _unloc(v) -> Optional[Location]:
    return None if v is None else Location(v[0], v[1])


def dump_diagnostic(d: Diagnostic) -> dict:
    out = {"c": d.code, "n": d.name, "m": d.message, "l": _loc(d.location), "e": _loc(d.end_location)}
    if d.fix is not None:
        out["f"] = [d.fix.applicability, d.fix.message,
                    [[_loc(e.start), _loc(e.end), e.content] for e in d.fix.edits]]
    if d.noqa_row is not None:
        out["q"] = d.noqa_row
    if d.severity != "error":
        out["s"] = d.severity
    if d.key is not None:
        out["k"] = d.key
    if d.is_runtime:
        out["r"] = True
    if d.cell is not None:
        out["cell"] = d.cell
    if d.extra:
        out["x"] = d.extra
    if d.help is not None:
        out["h"] = d.help
    return out


def load_diagnostic(v: dict, filename: str) -> Diagnostic:
    fix = None
    if "f" in v:
        app, msg, edits = v["f"]
        fix = Fix(app, msg, tuple(Edit(_unloc(s), _unloc(e), c) for s, e, c in edits))
    return Diagnostic(
        code=v["c"], name=v["n"], message=v["m"], filename=filename,
        location=_unloc(v["l"]), end_location=_unloc(v["e"]), fix=fix,
        noqa_row=v.get("q"), key=v.get("k"), is_runtime=v.get("r", False),
        cell=v.get("cell"), severity=v.get("s", "error"), extra=v.get("x") or {}, help=v.get("h"),
    )


class Bucket:
    """The cached entries of one (version, settings, rules) combination."""

    def __init__(self, path: Path):
        self.path = path
        self.entries: Dict[str, dict] = self._read()
        self.dirty: Dict[str, dict] = {}

    def _read(self) -> Dict[str, dict]:
        try:
            with open(self.path, "rb") as fh:
                data = json.loads(fh.read())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") != __version__:
            return {}
        entries = data.get("entries")
        return entries if isinstance(entries, dict) else {}

    def lookup(self, path: str, stat: os.stat_result, module_name: str, read=None) -> Optional[dict]:
        """The entry for this file if it is still valid. `read()` returns the file's bytes; it
        is called only when the stamp does not settle it."""
        entry = self.entries.get(path)
        if entry is None or entry.get("module") != module_name:
            return None
        if entry.get("stamp") == [stat.st_mtime_ns, stat.st_size]:
            return entry
        if read is None:
            return None
        try:
            data = read()
        except OSError:
            return None
        if content_hash(data) != entry.get("hash"):
            return None
        entry = dict(entry, stamp=_stamp(stat))
        if entry["stamp"] is not None:
            self.dirty[path] = entry  # next time the stamp alone will do
        return entry

    def store(self, path: str, stat: os.stat_result, digest: str, module_name: str,
              diagnostics: List[Diagnostic], extra: Optional[dict] = None) -> None:
        entry = {"hash": digest, "stamp": _stamp(stat), "module": module_name,
                 "diagnostics": [dump_diagnostic(d) for d in diagnostics]}
        if extra:
            entry["extra"] = extra
        self.entries[path] = entry
        self.dirty[path] = entry

    def save(self) -> None:
        if not self.dirty:
            return
        merged = self._read()  # keep what a concurrent run added meanwhile
        merged.update(self.dirty)
        _ensure_dir(self.path.parent.parent)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = json.dumps({"format": FORMAT, "version": __version__, "entries": merged},
                             separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        from ckptlint.workspace.write import replace_file

        replace_file(self.path, payload, prefix=".bucket.")
        self.dirty = {}


def _stamp(stat: os.stat_result) -> Optional[List[int]]:
    if time.time_ns() - stat.st_mtime_ns < RACY_NS:
        return None  # modified too recently for its mtime to tell a later change apart
    return [stat.st_mtime_ns, stat.st_size]


def _ensure_dir(root: Path) -> None:
    """The cache folder, with a .gitignore (`*`) and a CACHEDIR.TAG, as ruff's."""
    if (root / "CACHEDIR.TAG").exists():
        return
    root.mkdir(parents=True, exist_ok=True)
    for name, content in ((".gitignore", "# Automatically created by ckptlint.\n*\n"), ("CACHEDIR.TAG", _TAG)):
        target = root / name
        if not target.exists():
            from ckptlint.workspace.write import replace_file

            replace_file(target, content.encode("utf-8"), prefix=f".{name}.")


class Cache:
    """All buckets of one cache folder, opened as runs need them."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._buckets: Dict[tuple, Bucket] = {}
        self._by_id: Dict[tuple, Tuple[object, Bucket]] = {}

    def bucket(self, settings, codes, ignore_noqa: bool = False) -> Bucket:
        memo = self._by_id.get((id(settings), ignore_noqa))
        if memo is not None and memo[0] is settings:
            return memo[1]
        # every resolved setting (the root too: per-file-ignores are relative to it), and
        # which plugin rules (in which version) the codes stand for
        key = (settings.fingerprint(), tuple(codes), ignore_noqa, plugin_fingerprint())
        b = self._buckets.get(key)
        if b is None:
            digest = _blake2b(repr((FORMAT, __version__, key)).encode(), digest_size=12).hexdigest()
            b = self._buckets[key] = Bucket(self.root / __version__ / f"{digest}.json")
        self._by_id[(id(settings), ignore_noqa)] = (settings, b)
        return b

    def save(self) -> None:
        for b in self._buckets.values():
            try:
                b.save()
            except OSError:
                pass  # a read-only or full disk costs speed, not results
