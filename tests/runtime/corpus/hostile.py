"""The hostile corpus: every file runs code under at least one real loader.

``build(root)`` writes every case under ``root`` and returns them. Each payload creates its
own marker file ``root/markers/<case name>``. A case lists the loaders that run it
(``torch``: ``torch.load(path, weights_only=False)``; ``pickle``: ``pickle.load`` on the open
file; ``joblib``: ``joblib.load``; ``dcp``: torch.distributed.checkpoint loading the folder).
Cases with a ``group`` are alternatives of which torch reads only some (e.g. one of several
duplicate records): the proof is that at least one file of the group runs code.
"""

from __future__ import annotations

import importlib.util
import pathlib
from dataclasses import dataclass
from typing import Optional, Tuple

from . import containers, frames, ops, streams, zips
from .zips import Rec


@dataclass
class Case:
    name: str
    path: pathlib.Path  # what `ckptlint verify` is given
    marker: pathlib.Path
    loaders: Tuple[str, ...]
    load_path: Optional[pathlib.Path] = None  # the folder the `dcp` loader opens
    group: Optional[str] = None
    calls: str = "posix.system"  # the global the report must name (the call that runs)


class _Builder:
    def __init__(self, root: pathlib.Path):
        self.root = pathlib.Path(root)
        self.markers = self.root / "markers"
        self.markers.mkdir(parents=True, exist_ok=True)
        self.cases = []

    def marker(self, name: str) -> pathlib.Path:
        return self.markers / name

    def add(self, name, filename, data: bytes, loaders, group=None, calls="posix.system") -> Case:
        path = self.root / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return self.add_file(name, path, loaders, group, calls)

    def add_file(self, name, path, loaders, group=None, calls="posix.system") -> Case:
        """A case whose file a library wrote at ``path``."""
        case = Case(name, pathlib.Path(path), self.marker(name), tuple(loaders), group=group, calls=calls)
        self.cases.append(case)
        return case


def _raw(b: _Builder) -> None:
    for name, filename in (("raw_pkl", "raw.pkl"), ("raw_pickle", "raw.pickle"),
                           ("raw_joblib_name", "raw.joblib"), ("raw_no_extension", "raw_model"),
                           ("raw_pt", "raw.pt")):
        b.add(name, filename, ops.hostile(b.marker(name)), ("pickle", "torch") if name == "raw_pt" else ("pickle",))
    for gname in ops.gadgets("unused"):
        name = f"gadget_{gname}"
        module, qual, args = ops.gadgets(b.marker(name))[gname]
        b.add(name, f"{name}.pkl", ops.gadget_pickle(module, qual, args), ("pickle",), calls=f"{module}.{qual}")
    # code runs, then the stream stops making sense (the loader raises after the call)
    name = "unparseable_after_call"
    b.add(name, f"{name}.pkl", ops.PROTO2 + ops.system_call(b.marker(name)) + ops.POP + b"\xff\xfe",
          ("pickle", "torch"))
    name = "unparseable_after_gadget"
    module, qual, args = ops.gadgets(b.marker(name))["collect_env_run"]
    b.add(name, f"{name}.pkl", ops.PROTO4 + ops.glob(module, qual) + args + ops.REDUCE + b"\xff",
          ("pickle",), calls=f"{module}.{qual}")
    name = "frame_big_raw"
    b.add(name, f"{name}.pkl", frames.big_frame_cross(b.marker(name)), ("pickle", "torch"))


def _zip(b: _Builder) -> None:
    def benign(tag):
        return ops.PROTO2 + ops.bu(f"benign {tag}") + ops.STOP

    rest = zips.torch_records(b"")[1:]
    # duplicate data.pkl records, the payload in each position, two central-directory layouts
    for n in range(2, 6):
        for layout in ("records_first", "records_last"):
            for pos in range(n):
                name = f"zip_dup{n}_{layout}_payload{pos}"
                recs = [Rec("archive/data.pkl", ops.hostile(b.marker(name)) if i == pos else benign(i))
                        for i in range(n)]
                recs = recs + rest if layout == "records_first" else rest + recs
                b.add(name, f"{name}.pt", zips.build(recs), ("torch",), group=f"zip_dup{n}_{layout}")
    # benign data.pkl beside a malicious data.PKL (and the other way round), both orders
    for evil in ("data.PKL", "data.pkl"):
        good = "data.pkl" if evil == "data.PKL" else "data.PKL"
        for first in ("evil_first", "evil_second"):
            name = f"zip_case_clash_{evil.replace('.', '_')}_{first}"
            e = Rec(f"archive/{evil}", ops.hostile(b.marker(name)))
            g = Rec(f"archive/{good}", benign(0))
            recs = ([e, g] if first == "evil_first" else [g, e]) + rest
            b.add(name, f"{name}.pt", zips.build(recs), ("torch",), group=f"zip_case_clash_{evil.replace('.', '_')}")
    # the record (or the whole folder) renamed in another case
    for folder, record in (("archive", "DATA.PKL"), ("archive", "Data.pkl"), ("archive", "data.Pkl"),
                           ("ARCHIVE", "data.pkl"), ("Archive", "Data.Pkl")):
        name = f"zip_renamed_{folder}_{record.replace('.', '_')}"
        recs = [Rec(f"{folder}/{record}", ops.hostile(b.marker(name)))] + zips.torch_records(b"", folder)[1:]
        b.add(name, f"{name}.pt", zips.build(recs), ("torch",))
    # a malformed extra field on an unrelated record: Python's zipfile refuses the archive,
    # torch's reader (miniz) never looks at it
    bad = b"\xfe\xca" + (200).to_bytes(2, "little") + b"xx"
    for where in ("central", "central_and_local"):
        name = f"zip_bad_extra_{where}"
        recs = [Rec("archive/data.pkl", ops.hostile(b.marker(name)))] + [
            Rec(r.name, r.data, extra=bad, local_extra=bad if where != "central" else b"")
            if r.name.endswith("byteorder") else r for r in rest]
        b.add(name, f"{name}.pt", zips.build(recs), ("torch",))
    # two archives of the same layout back to back: the end record is the second's, whose
    # offsets Python's zipfile shifts by the first's size ("concat"); torch takes them as
    # they are and reads the first archive's records
    name = "zip_cd_offset_concat"
    evil = ops.hostile(b.marker(name))
    good = ops.PROTO2 + ops.bu("x" * (len(evil) - 8)) + ops.STOP
    assert len(good) == len(evil)
    first = zips.build([Rec("archive/data.pkl", evil)] + rest)
    second = zips.build([Rec("archive/data.pkl", good)] + rest)
    b.add(name, f"{name}.pt", first[:-22] + second, ("torch",))
    name = "zip_deflated"
    recs = [Rec("archive/data.pkl", ops.hostile(b.marker(name)), deflate=True)] + rest
    b.add(name, f"{name}.pt", zips.build(recs), ("torch",))
    for kind in ("unicode_cross", "readline_cross", "binbytes_cross", "nested_frame", "big_frame_cross"):
        name = f"zip_frame_{kind}"
        pkl = getattr(frames, kind)(b.marker(name))
        b.add(name, f"{name}.pt", zips.build([Rec("archive/data.pkl", pkl)] + rest), ("torch",))
    name = "zip_unparseable_after_call"
    pkl = ops.PROTO2 + ops.system_call(b.marker(name)) + ops.POP + b"\xff"
    b.add(name, f"{name}.pt", zips.build([Rec("archive/data.pkl", pkl)] + rest), ("torch",))
    name = "zip_gadget_spawnlp"
    module, qual, args = ops.gadgets(b.marker(name))["tempfile_os_spawnlp"]
    pkl = ops.gadget_pickle(module, qual, args)
    b.add(name, f"{name}.pt", zips.build([Rec("archive/data.pkl", pkl)] + rest), ("torch",),
          calls=f"{module}.{qual}")


def _legacy_and_tar(b: _Builder) -> None:
    for pos in range(5):
        name = f"legacy_payload_pickle{pos}"
        b.add(name, f"{name}.pt", streams.legacy({pos: ops.hostile(b.marker(name))}), ("torch",))
    name = "legacy_frame_big_cross"
    b.add(name, f"{name}.pt", streams.legacy({3: frames.big_frame_cross(b.marker(name))}), ("torch",))
    name = "tar_only_storages"
    b.add(name, f"{name}.tar", streams.tar({"storages": ops.hostile(b.marker(name))}), ("torch",))
    name = "tar_storages_hardlink"
    b.add(name, f"{name}.pt", streams.tar({"blob": ops.hostile(b.marker(name))}, links={"storages": "blob"}),
          ("torch",))
    name = "tar_tensors_payload"
    b.add(name, f"{name}.pt", streams.tar_full(tensors=ops.hostile(b.marker(name))), ("torch",))
    name = "tar_pickle_payload"
    b.add(name, f"{name}.pt", streams.tar_full(pickle=ops.hostile(b.marker(name))), ("torch",))
    name = "tar_storages_second_pickle"  # the storage views list, after num_storages = 0
    storages = ops.PROTO2 + ops.binint(0) + ops.STOP + ops.hostile(b.marker(name))
    b.add(name, f"{name}.pt", streams.tar_full(storages=storages), ("torch",))


def _dcp(b: _Builder, torch) -> None:
    name = "dcp_distcp_payload"
    folder = b.root / name
    streams.dcp_save(torch, folder)
    archive = zips.build([Rec("archive/data.pkl", ops.hostile(b.marker(name)))]
                         + zips.torch_records(b"")[1:])
    shard = streams.dcp_replace_item(folder, "extra.name", archive)  # not the last item
    b.cases.append(Case(name, pathlib.Path(shard), b.marker(name), ("dcp",), load_path=folder))
    name = "dcp_metadata_payload"
    folder = b.root / name
    streams.dcp_save(torch, folder)
    meta = streams.dcp_metadata_with_payload(folder, b.marker(name))
    b.cases.append(Case(name, pathlib.Path(meta), b.marker(name), ("dcp", "pickle"), load_path=folder))


def _joblib(b: _Builder) -> None:
    import joblib
    import numpy as np

    name = "joblib_object"
    joblib.dump({"weights": np.arange(4.0), "hook": ops._Touch(str(b.marker(name)))}, b.root / f"{name}.joblib")
    b.cases.append(Case(name, b.root / f"{name}.joblib", b.marker(name), ("joblib",)))
    # an object array is written as a whole nested pickle inside the stream: a sequential
    # opcode reader stops at its STOP, joblib reads it and goes on to the payload after it
    name = "joblib_nested_pickle_hides_payload"
    arr = np.array([1, "a"], dtype=object)
    joblib.dump([arr, ops._Touch(str(b.marker(name)))], b.root / f"{name}.joblib")
    b.cases.append(Case(name, b.root / f"{name}.joblib", b.marker(name), ("joblib",)))


# cases that need torch (DCP) or joblib, named here so tests can be collected without them
OPTIONAL = {"dcp_distcp_payload": "torch", "dcp_metadata_payload": "torch", "joblib_object": "joblib",
            "joblib_nested_pickle_hides_payload": "joblib"}
OPTIONAL.update({name: " and ".join(needs) for name, needs in containers.NEEDS.items()})


def build_scratch_groups() -> list:
    """The cases that belong to a group (byte-only, built in a scratch folder)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return [c for c in build(tmp, torch=None, optional=False) if c.group]


def names() -> list:
    """Every case name (building the byte-only cases in a scratch folder: milliseconds)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return [c.name for c in build(tmp, torch=None, optional=False)] + list(OPTIONAL)


def build(root, torch=None, optional: bool = True) -> list:
    b = _Builder(root)
    _raw(b)
    _zip(b)
    _legacy_and_tar(b)
    containers.build(b, torch, optional)
    if optional and torch is not None:
        _dcp(b, torch)
    if optional and importlib.util.find_spec("joblib") and importlib.util.find_spec("numpy"):
        _joblib(b)
    return b.cases


GROUPED = frozenset(c.name for c in build_scratch_groups())
