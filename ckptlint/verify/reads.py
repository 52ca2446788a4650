"""The files of one `verify` run, each read once however many checks need it: the named
files and the folder walk, the DeepSpeed layouts (a ZeRO optimizer file's rank count), the
shards of a Hugging Face index, the configured entries (several may name one file).

A check that will take a file later says so first (``want``); a read is kept while such a
check has not taken it, then dropped, so memory stays that of the files still wanted, not
of the whole run. ``peek`` reads without taking (the layouts, an index's shards).
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any, Callable, Dict, Iterable, Tuple

from ckptlint.reader import dcp
from ckptlint.reader.reader import Checkpoint, read_checkpoint


class Reads:
    def __init__(self) -> None:
        self._kept: Dict[Tuple[str, str], Any] = {}
        self._wanted: Counter = Counter()

    def want(self, paths: Iterable[str], kind: str = "file") -> None:
        """Announce a later take of each path (``kind``: "file", or "dcp" for a DCP folder)."""
        self._wanted.update((kind, os.path.abspath(p)) for p in paths)

    def checkpoint(self, path: str) -> Checkpoint:
        return self._get(("file", path), self._read_file, take=True)

    def peek(self, path: str) -> Checkpoint:
        return self._get(("file", path), self._read_file, take=False)

    def folder(self, path: str) -> dcp.Folder:
        return self._get(("dcp", path), dcp.read_folder, take=True)

    def _read_file(self, path: str) -> Checkpoint:
        return read_checkpoint(path, read_shard=self.peek)

    def _get(self, key: Tuple[str, str], read: Callable[[str], Any], take: bool) -> Any:
        key = (key[0], os.path.abspath(key[1]))
        value = self._kept.pop(key, None)
        if value is None:
            value = read(key[1])
        if take and self._wanted[key]:
            self._wanted[key] -= 1
        if self._wanted[key]:
            self._kept[key] = value
        return value
