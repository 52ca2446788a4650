"""Telling checkpoint files from the rest of a folder, by content, as a loader would.

A file is worth reading when some loader could unpickle it or it is a checkpoint format:
a zip with a pickle record, a pickle (protocol 2+: its PROTO header; protocol 0/1: it
parses as one, or names an importable callable before it stops; the whole file is read,
not a first window), a safetensors header, a torch tar, or compressed content that holds
one of these. A file that reads as several of these is worth reading whatever else it
looks like (a pickle that starts `BZh` is a pickle even though it does not decompress).
"""

from __future__ import annotations

import os
from typing import BinaryIO, Optional

from ckptlint.reader import compression, source, zipdir
from ckptlint.reader.opcodes import OPCODES
from ckptlint.reader.pickle_scan import scan
from ckptlint.reader.records import PickleScanError
from ckptlint.reader.safetensors_file import looks_like_safetensors
from ckptlint.reader.streams import torch_tar

# names `verify FOLDER` and the pre-commit hook check even when their content says nothing
# (an empty or HTML `model.pt` is worth a CKPT109)
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".safetensors", ".pkl", ".pickle", ".joblib")
PEEK = 1 << 16  # decompressed bytes looked at first; the whole content when they end mid-pickle
SNIFF_LIMIT = 1 << 30


def sniff(path: str) -> Optional[str]:
    """None when the file is something a loader could unpickle or a checkpoint format,
    judged by content whatever its name; else why it is not (for the skip count)."""
    decoded = False
    try:
        with source.open_file(path) as f:
            head = f.read(512)
            size = f.seek(0, os.SEEK_END)
            if head.startswith(zipdir.LOCAL_SIG):
                try:
                    archive = zipdir.open_archive(f, 0, size)
                except zipdir.ZipError:
                    return None  # a broken zip: torch would try it; CKPT109 says what is wrong
                if any(e.name.lower().endswith(b".pkl") for e in archive.entries):
                    return None
                return None if path.endswith(CHECKPOINT_SUFFIXES) else "zip archives without pickles"
            if _says_pickle(head) or looks_like_safetensors(head, size) or torch_tar(f) is not None:
                return None
            for codec in compression.codecs_of(head):
                holds = _compressed_pickle(f, codec)
                if holds is None:
                    continue
                decoded = True
                if holds:
                    return None
            if head[:1] in OPCODES:
                f.seek(0)
                if _text_pickle(f):
                    return None
    except OSError:
        return None  # unreadable: verifying it says why
    if path.endswith(CHECKPOINT_SUFFIXES):
        return None
    return "compressed files that hold no pickle" if decoded else "not checkpoints or pickles (by content)"


def _says_pickle(head: bytes) -> bool:
    return head[:1] == b"\x80" and b"\x00" < head[1:2] <= b"\x05"  # a pickle (protocol 1-5)


def _compressed_pickle(f: BinaryIO, codec: str) -> Optional[bool]:
    """Whether the decompressed content holds a pickle or an archive; None when it does not
    decompress (or its codec's module is missing: the file is then read, and says so)."""
    try:
        out = compression.decompress(f, codec, PEEK)
    except compression.CodecMissing:
        return True
    except compression.NotCompressed:
        return None
    inner = out.read(0, min(out.size, 512))
    if inner.startswith(zipdir.LOCAL_SIG) or _says_pickle(inner) or compression.codecs_of(inner):
        return True
    if inner[:1] not in OPCODES:
        return False
    if out.over_limit:  # look at all of it: a text pickle's payload may come late
        out = compression.decompress(f, codec, SNIFF_LIMIT)
    return _text_pickle(out.file())


def _text_pickle(f: BinaryIO) -> bool:
    """A protocol 0 pickle, read to its end (not a first window): it reaches STOP, or calls
    an importable-looking global before it fails (a text file that starts with
    `click\\nrequests` only "imports" `lick.requests`; a Python file that starts with
    `import x` names `mport x`, which nothing can import)."""
    f.seek(0)
    try:
        scan(f, SNIFF_LIMIT)
        return True
    except PickleScanError as exc:
        uses = getattr(exc, "uses", {})
        return any(use != "imports" and "." in g and all(p.isidentifier() for p in g.split("."))
                   for g, use in uses.items())
