"""What the reader finds in a file (``Checkpoint``, its ``Pickle`` s) and the context one
reading carries (``Context``: options, and the budget that bounds nested and compressed
content)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from ckptlint.reader.inert_machine import merge_uses
from ckptlint.reader.records import StorageInfo

MAX_PICKLE_BYTES = 1 << 30
MAX_DEPTH = 6  # containers inside containers: a compressed pickle of an archive of a pickle ...
MAX_EXPANDED = 2 << 30  # bytes decompressed or unwrapped per file, all levels together


@dataclass
class Pickle:
    """One pickle in the file that some loader unpickles."""

    where: str  # `archive/data.pkl`, `pickle 2 (byte 1234)`, `archive 2 (bytes 10-99): ...`
    globals: List[str] = field(default_factory=list)
    uses: Dict[str, str] = field(default_factory=dict)  # global -> calls | constructs | imports
    error: Optional[str] = None  # could not be parsed to the end: fail closed
    straddled: bool = False  # its frames end inside instructions: crafted
    item: bool = False  # in a byte range a loader opens on its own (a DCP item): say where
    implied: frozenset = frozenset()  # classes it builds without naming them (numpy dtypes)
    # globals that only load nested content the reader read too (its pickles are listed on
    # their own): `torch.storage._load_from_bytes(b"...")` of an archive of tensors
    unwrapped: frozenset = frozenset()
    refused_ops: frozenset = frozenset()  # opcodes torch's weights-only unpickler refuses
    weights_only: bool = False  # torch.load(weights_only=True) reads this pickle


@dataclass
class Checkpoint:
    path: str
    format: str = "unknown"  # zip | archives | legacy | pickle | tar | safetensors | sharded | pt2 | unknown
    root: Any = None
    storages: Dict[str, StorageInfo] = field(default_factory=dict)
    pickles: List[Pickle] = field(default_factory=list)
    items: List[Any] = field(default_factory=list)  # roots of archives laid end to end
    problems: List[str] = field(default_factory=list)  # integrity faults: CKPT109
    crc_failed: bool = False
    not_checkpoint: Optional[str] = None  # not a checkpoint at all: CKPT109 only
    unverified: Optional[str] = None  # a format whose pickles are not all checked: CKPT101
    torchscript: bool = False  # torch.load hands it to torch.jit.load
    records: List[str] = field(default_factory=list)
    archive_version: Optional[str] = None
    metadata: Dict[str, Any] = field(default_factory=dict)  # safetensors __metadata__
    shards: List["Checkpoint"] = field(default_factory=list)
    failure: Optional[str] = None  # the reader itself failed before every pickle was read
    runs_code: Optional[str] = None  # the format itself runs code on load (compiled code)

    @property
    def globals(self) -> List[str]:
        out: List[str] = []
        for p in self.pickles:
            out.extend(g for g in p.globals if g not in out)
        return out

    @property
    def uses(self) -> Dict[str, str]:
        out: Dict[str, str] = {}
        for p in self.pickles:
            out = merge_uses(out, p.uses)
        return out

    @property
    def implied(self) -> frozenset:
        return frozenset().union(*(p.implied for p in self.pickles))

    @property
    def unwrapped(self) -> frozenset:
        """Globals every pickle that names them only uses to load nested content that was
        read (and is judged by its own pickles)."""
        named = [p for p in self.pickles if p.globals]
        out = frozenset().union(*(p.unwrapped for p in named))
        return frozenset(g for g in out if all(g in p.unwrapped for p in named if g in p.globals))

    @property
    def refused_ops(self) -> frozenset:
        """Opcodes of the pickles ``torch.load(weights_only=True)`` reads that it refuses."""
        return frozenset().union(*(p.refused_ops for p in self.pickles if p.weights_only))

    @property
    def pickle_error(self) -> Optional[str]:
        """Why some pickle of the file could not be proven safe (fail closed), or None."""
        for p in self.pickles:
            if p.error is not None:
                return p.error if len(self.pickles) == 1 else f"{p.error} in {p.where}"
        return self.failure

    @property
    def readable(self) -> bool:
        return self.not_checkpoint is None and not self.problems and self.pickle_error is None


class Budget:
    """Bytes that may still be decompressed or unwrapped while reading one file (shared by
    every level of nesting)."""

    def __init__(self, total: Optional[int] = None):
        self.left = MAX_EXPANDED if total is None else total

    def limit(self) -> int:
        """The most one more stream may expand to."""
        return max(0, min(MAX_PICKLE_BYTES, self.left))

    def spend(self, n: int) -> None:
        self.left -= n


@dataclass
class Context:
    """One reading: options, nesting depth and the shared budget. ``scan`` reads a pickle
    into a checkpoint (nested loads included); ``read_nested`` reads bytes a loader opens as a
    file of their own (set by reader.py, which knows every container)."""

    data_crc: bool = False
    depth: int = 0
    budget: Budget = field(default_factory=Budget)
    read_nested: Optional[Callable[..., Any]] = None
    scan_into: Optional[Callable[..., Any]] = None

    def deeper(self) -> Optional["Context"]:
        """The context one container further in, or None past MAX_DEPTH."""
        if self.depth >= MAX_DEPTH:
            return None
        return Context(self.data_crc, self.depth + 1, self.budget, self.read_nested, self.scan_into)

    def load_nested(self, ck: Checkpoint, label: str, data: bytes, loader: str) -> bool:
        """Read ``data``, which ``loader`` opens on its own, as a file of its own, adding its
        pickles and faults to ``ck``; False when the budget does not allow it."""
        assert self.read_nested is not None
        return self.read_nested(ck, label, data, loader, self)

    def scan(self, ck: Checkpoint, where: str, data, quiet: bool = False, start: int = 0,
             weights_only: bool = False, reuse=None):
        """Scan one pickle into ``ck.pickles`` (``reuse``: a scan of the same bytes made
        before), then read what it loads nested; the ScanResult, or None when it failed."""
        assert self.scan_into is not None
        return self.scan_into(ck, where, data, self, quiet=quiet, start=start, weights_only=weights_only,
                              reuse=reuse)
