"""Issue 21: verify reads the bytes the loaders read.

- what torch refuses is CKPT109, checked against torch itself (named corruptions, and a
  sweep of every single-byte change of a small checkpoint in both formats);
- what `torch.load(weights_only=True)` refuses for its pickle opcodes is said, with why;
- nested and compressed bombs stay within the reading budget (counted, never timed);
- a codec whose module is missing is named, the file never passed.
"""

from __future__ import annotations

import gzip
import inspect
import io
import pickle
import re
import subprocess
import sys
import tracemalloc
import zipfile

import pytest

from ckptlint.reader import checkpoint, compression
from ckptlint.reader.reader import read_checkpoint
from ckptlint.reader.torch_tables import WEIGHTS_ONLY_OPCODES
from ckptlint.verify.check import file_findings

from ._util import cli_env
from .corpus import containers, ops, streams, zips
from .corpus.zips import Rec

torch = pytest.importorskip("torch")


def _findings(path):
    return file_findings(read_checkpoint(path), [], None)


def _torch_refuses(path) -> bool:
    try:
        torch.load(path, weights_only=True)
    except Exception:  # noqa: BLE001 - any refusal
        return True
    return False


def _saved(tmp_path, legacy=False) -> bytes:
    torch.manual_seed(0)
    buf = io.BytesIO()
    torch.save(torch.nn.Linear(3, 2).state_dict(), buf, _use_new_zipfile_serialization=not legacy)
    return buf.getvalue()


# -- the weights-only unpickler's opcodes --------------------------------------------------


def test_the_weights_only_opcode_table_is_torchs():
    """The opcodes `Unpickler.load` of torch's weights-only unpickler handles, read from its
    source: a torch that reads more (or fewer) opcodes makes this fail."""
    from torch import _weights_only_unpickler as wo

    source = inspect.getsource(wo.Unpickler.load)
    handled = set(re.findall(r"key\[0\] == ([A-Z0-9_]+)\[0\]", source))
    handled |= {name for group in re.findall(r"key\[0\] in \[(.*)\]:", source)
                for name in re.findall(r"([A-Z0-9_]+)\[0\]", group)}
    assert handled == WEIGHTS_ONLY_OPCODES


@pytest.mark.parametrize("protocol", [3, 4, 5])
def test_a_file_saved_with_a_newer_pickle_protocol_is_said_to_be_refused(tmp_path, protocol):
    path = tmp_path / f"p{protocol}.pt"
    torch.save({"w": torch.ones(2), "tag": b"raw bytes"}, path, pickle_protocol=protocol)
    assert _torch_refuses(path)
    torch.load(path, weights_only=False)  # loads without weights_only: plain data
    found = _findings(path)
    assert [(d.code, d.severity) for d in found] == [("CKPT101", "warning")], found
    text = found[0].message + (found[0].help or "")
    assert "`torch.load(weights_only=True)` refuses it" in text and "weights-only unpickler" in text
    assert ("BINBYTES" if protocol == 3 else "FRAME") in text


def test_the_default_protocol_is_not_said_to_be_refused(tmp_path):
    path = tmp_path / "p2.pt"
    torch.save({"w": torch.ones(2), "tag": b"raw bytes"}, path)
    assert not _torch_refuses(path)
    assert _findings(path) == []


# -- what torch refuses before it unpickles anything: CKPT109 ------------------------------


def _records(data: bytes):
    z = zipfile.ZipFile(io.BytesIO(data))
    return [(i.filename, z.read(i.filename)) for i in z.infolist()]


def _rebuilt(data: bytes, change=lambda name, content: content, extra=()) -> bytes:
    recs = [(n, change(n.split("/", 1)[1], d)) for n, d in _records(data)]
    recs = [Rec(n, d) for n, d in recs if d is not None] + [Rec(n, d) for n, d in extra]
    return zips.build(recs)


def _flag(data: bytes, name: str, offset: int, value: bytes) -> bytes:
    """Overwrite bytes of ``name``'s central-directory entry (offset from its signature)."""
    out = bytearray(data)
    at = out.rfind(b"PK\x01\x02", 0, out.rfind(name.encode()))
    out[at + offset:at + offset + len(value)] = value
    return bytes(out)


CORRUPTIONS = {
    "version_too_new": lambda d: _rebuilt(d, lambda n, c: b"11" if n == "version" else c),
    "version_zero": lambda d: _rebuilt(d, lambda n, c: b"0" if n == "version" else c),
    "version_not_a_number": lambda d: _rebuilt(d, lambda n, c: b"x" if n == "version" else c),
    "no_version_record": lambda d: _rebuilt(d, lambda n, c: None if n == "version" else c),
    "byteorder_unknown": lambda d: _rebuilt(d, lambda n, c: b"middle" if n == "byteorder" else c),
    "storage_alignment_not_a_number": lambda d: _rebuilt(d, lambda n, c: b"x" if n == ".storage_alignment" else c),
    "storage_record_longer": lambda d: _rebuilt(d, lambda n, c: c + b"1234" if n == "data/0" else c),
    "storage_record_shorter": lambda d: _rebuilt(d, lambda n, c: c[:-4] if n == "data/0" else c),
    "record_outside_the_folder": lambda d: _rebuilt(d, extra=[("elsewhere/notes", b"x")]),
    "record_name_not_utf8": lambda d: _rebuilt(d, extra=[("archive/extra-X", b"x")]).replace(b"extra-X", b"extra\xff"),
    "storage_entry_encrypted": lambda d: _flag(d, "archive/data/0", 8, b"\x01\x00"),
    "storage_entry_unknown_method": lambda d: _flag(d, "archive/data/0", 10, b"\x63\x00"),
    "storage_entry_no_local_header": lambda d: _flag(d, "archive/data/0", 42, b"\x05\x00\x00\x00"),
    "data_pkl_marked_directory": lambda d: _flag(d, "archive/data.pkl", 38, b"\x10\x00\x00\x00"),
}
LEGACY_CORRUPTIONS = {
    "legacy_wrong_magic": lambda d: d[:5] + bytes([d[5] ^ 1]) + d[6:],  # a byte of the magic number's LONG1
    "legacy_wrong_protocol": lambda d: d.replace(b"M\xe9\x03", b"M\xea\x03", 1),
    "legacy_tensor_past_its_storage": lambda d: _legacy_offset(d, 200),
}


def _legacy_offset(data: bytes, offset: int) -> bytes:
    """The first tensor's storage offset (BININT1 0 right after its BINPERSID) set to ``offset``."""
    at = data.index(b"QK\x00")
    return data[:at + 2] + bytes([offset]) + data[at + 3:]


@pytest.mark.parametrize("name", sorted(CORRUPTIONS) + sorted(LEGACY_CORRUPTIONS))
def test_a_file_torch_refuses_is_unreadable(tmp_path, name):
    change = CORRUPTIONS.get(name) or LEGACY_CORRUPTIONS[name]
    path = tmp_path / f"{name}.pt"
    path.write_bytes(change(_saved(tmp_path, legacy=name.startswith("legacy"))))
    assert _torch_refuses(path), f"{name}: torch loads it"
    found = _findings(path)
    assert any(d.code == "CKPT109" for d in found), f"{name}: verify said {[(d.code, d.message) for d in found]}"


@pytest.mark.slow
@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_every_single_byte_change_torch_refuses_is_reported(tmp_path, legacy):
    """Each byte of a small checkpoint flipped in turn (and the file cut every 7 bytes):
    whenever torch.load(weights_only=True) refuses the result, verify reports it (CKPT109,
    or CKPT101 when a pickle no longer parses or names something else)."""
    good = _saved(tmp_path, legacy)
    variants = [good[:cut] for cut in range(1, len(good), 7)]
    variants += [good[:i] + bytes([good[i] ^ 0xFF]) + good[i + 1:] for i in range(len(good))]
    missed = []
    path = tmp_path / "variant.pt"
    for i, data in enumerate(variants):
        path.write_bytes(data)
        if not _torch_refuses(path):
            continue
        if not any(d.code in ("CKPT109", "CKPT101") for d in _findings(path)):
            missed.append(i)
    assert missed == [], f"{len(missed)} of {len(variants)} variants torch refuses pass verify, e.g. {missed[:5]}"


# -- bombs: bounded by the budget ---------------------------------------------------------


def test_a_compressed_bomb_stops_at_the_budget(tmp_path, monkeypatch):
    """gzip of 64 MiB of zeros against a 4 MiB budget: decoding stops at 4 MiB, the file is
    said not to be checked beyond it, and the temporary content spills to disk (small
    memory, counted with tracemalloc)."""
    monkeypatch.setattr(checkpoint, "MAX_EXPANDED", 4 << 20)
    monkeypatch.setattr(compression, "SPILL", 1 << 20)
    path = tmp_path / "bomb.pkl.gz"
    path.write_bytes(gzip.compress(ops.PROTO2 + ops.binbytes(b"\0" * (64 << 20)) + ops.STOP))
    decoded = []
    real = compression.decompress

    def counting(*args, **kwargs):
        out = real(*args, **kwargs)
        decoded.append(out.size)
        return out

    monkeypatch.setattr(compression, "decompress", counting)
    tracemalloc.start()
    ck = read_checkpoint(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert decoded and max(decoded) <= 4 << 20
    assert ck.unverified and "limit" in ck.unverified
    assert peak < 16 << 20, f"peak Python memory {peak >> 20} MiB"
    assert [d.code for d in file_findings(ck, [], None)] == ["CKPT101"]


def test_nested_compression_stops_at_the_depth_budget(tmp_path):
    """gzip inside gzip ... 20 levels: read to MAX_DEPTH levels, then said unchecked."""
    data = ops.hostile(tmp_path / "never")
    for _ in range(20):
        data = gzip.compress(data)
    path = tmp_path / "deep.gz"
    path.write_bytes(data)
    ck = read_checkpoint(path)
    assert ck.unverified and "nested too deep" in ck.unverified
    assert not any(p.globals for p in ck.pickles)
    found = file_findings(ck, [], None)
    assert [d.code for d in found] == ["CKPT101"] and found[0].severity == "error"


def test_nested_archives_stop_at_the_depth_budget(tmp_path):
    """`_load_from_bytes` of an archive of `_load_from_bytes` ... 30 levels deep: the reads
    stop at MAX_DEPTH, the wrapper is not taken for plain data, the file is an error."""
    data = ops.hostile(tmp_path / "never")
    for _ in range(30):
        data = zips.build(zips.torch_records(containers.load_from_bytes(data)))
    path = tmp_path / "deep.pt"
    path.write_bytes(data)
    ck = read_checkpoint(path)
    assert ck.unverified and "budget" in ck.unverified
    depth = max(p.where.count("nested archive") for p in ck.pickles)
    assert depth == checkpoint.MAX_DEPTH
    found = file_findings(ck, [], None)
    assert any(d.code == "CKPT101" and d.severity == "error" for d in found)


def test_many_nested_archives_stop_at_the_byte_budget(tmp_path, monkeypatch):
    """300 nested archives of 64 KiB each against a 4 MiB budget: at most 4 MiB is read."""
    monkeypatch.setattr(checkpoint, "MAX_EXPANDED", 4 << 20)
    blobs = [zips.build(zips.torch_records(ops.PROTO2 + ops.binbytes(bytes([i % 256]) * (64 << 10)) + ops.STOP))
             for i in range(300)]
    body = ops.PROTO2 + pickle.EMPTY_LIST + ops.MARK
    for blob in blobs:
        body += ops.glob("torch.storage", "_load_from_bytes") + ops.binbytes(blob) + ops.TUPLE1 + ops.REDUCE
    path = tmp_path / "wide.pkl"
    path.write_bytes(body + b"e" + ops.STOP)
    ck = read_checkpoint(path)
    nested = [p for p in ck.pickles if "nested archive" in p.where]
    assert 0 < len(nested) * (64 << 10) <= 4 << 20
    assert ck.unverified and "budget" in ck.unverified


# -- codecs whose module is missing --------------------------------------------------------


def test_a_missing_codec_module_is_named_not_passed(tmp_path):
    pytest.importorskip("lz4")
    import lz4.frame

    path = tmp_path / "model.joblib"
    path.write_bytes(lz4.frame.compress(ops.hostile(tmp_path / "never")))
    hide = "import sys; sys.modules['lz4'] = sys.modules['lz4.frame'] = None; "
    run = subprocess.run([sys.executable, "-c", hide + "from ckptlint.cli.main import main; sys.exit(main())", "verify",
                          str(path)], capture_output=True, text=True, env=cli_env())
    assert run.returncode == 1, run.stdout + run.stderr
    headline = [line for line in run.stdout.splitlines() if "CKPT101" in line]
    assert headline and "`lz4`" in headline[0] and "pip install lz4" in headline[0], run.stdout


# -- what a pickle loads nested ------------------------------------------------------------


def test_a_wrapper_of_plain_data_is_not_code_but_a_wrapper_of_a_payload_is(tmp_path):
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(containers.load_from_bytes(zips.build(zips.torch_records(ops.PROTO2 + ops.EMPTY_DICT + ops.STOP))))
    hostile = tmp_path / "hostile.pkl"
    hostile.write_bytes(containers.load_from_bytes(zips.build(zips.torch_records(ops.hostile(tmp_path / "x")))))
    computed = tmp_path / "computed.pkl"  # the bytes come from a call: unknown, so it is code
    computed.write_bytes(ops.PROTO2 + ops.glob("torch.storage", "_load_from_bytes") + ops.glob("os", "urandom")
                         + ops.binint(8) + ops.TUPLE1 + ops.REDUCE + ops.TUPLE1 + ops.REDUCE + ops.STOP)
    assert [(d.code, d.severity) for d in _findings(plain)] == [("CKPT101", "warning")]
    assert [(d.code, d.severity) for d in _findings(hostile)] == [("CKPT101", "error")]
    assert "posix.system" in _findings(hostile)[0].message + (_findings(hostile)[0].help or "")
    found = _findings(computed)
    assert [(d.code, d.severity) for d in found] == [("CKPT101", "error")]
    assert "torch.storage._load_from_bytes" in found[0].message + (found[0].help or "")


def test_a_legacy_stream_nested_in_a_pickle_is_read(tmp_path):
    path = tmp_path / "legacy_inside.pkl"
    path.write_bytes(containers.load_from_bytes(streams.legacy({3: ops.hostile(tmp_path / "x")})))
    ck = read_checkpoint(path)
    assert any("posix.system" in p.globals and "legacy pickle (main object)" in p.where for p in ck.pickles)


def test_pt2_written_by_torch_export_is_read_and_clean(tmp_path):
    path = tmp_path / "model.pt2"
    containers.export_model(torch, path)
    ck = read_checkpoint(path)
    assert ck.format == "pt2" and ck.problems == [] and ck.not_checkpoint is None
    assert any("sample_inputs" in p.where for p in ck.pickles)  # torch.load reads them
    assert _findings(path) == []
