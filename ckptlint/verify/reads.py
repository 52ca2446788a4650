"""The files of one `verify` run, each read once however many checks need it: the named
files and the folder walk, the DeepSpeed layouts (a ZeRO optimizer file's rank count), the
shards of a Hugging Face index, the configured entries (several may name one file).

A check that will take a file later says so first (``want``); a read is kept while such a
check has not taken it, then dropped, so memory stays that of the files still wanted, not
of the whole run. ``peek`` reads without taking (the layouts, an index's shards).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Dict, Iterable, Tuple

from ckptlint.reader import dcp, source
from ckptlint.reader.reader import Checkpoint, read_checkpoint


class Reads:
    def __init__(self) -> None:
        self._kept: Dict[Tuple[str, str], Any] = {}
        self._wanted: Counter = Counter()

    def want(self, paths: Iterable[str], kind: str = "file") -> None:
        """Announce a later take of each path (``kind``: "file", or "dcp" for a DCP folder)."""
        self._wanted.update((kind, source.abspath(p)) for p in paths)

    def checkpoint(self, path: str) -> Checkpoint:
        return self._get("file", path, take=True)

    def peek(self, path: str) -> Checkpoint:
        return self._get("file", path, take=False)

    def folder(self, path: str) -> dcp.Folder:
        return self._get("dcp", path, take=True)

    def _get(self, kind: str, path: str, take: bool) -> Any:
        key = (kind, source.abspath(path))
        value = self._kept.pop(key, None)
        if value is None:
            value = dcp.read_folder(key[1]) if kind == "dcp" else read_checkpoint(key[1], read_shard=self.peek)
        if take and self._wanted[key]:
            self._wanted[key] -= 1
        if self._wanted[key]:
            self._kept[key] = value
        return value
