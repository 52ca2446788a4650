"""`ckptlint verify FILE` on its own: formats, integrity, devices, non-checkpoints."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import pickle
import struct
import zipfile

import pytest

from ckptlint.verify import verify
from ckptlint.reader.reader import read_checkpoint

from tests.helpers import HANG
from ._util import codes


def check(path, **kw):
    diags, _notes = verify([], [path], root=path.parent, torch_version=kw.get("tv"),
                           safe_globals=kw.get("safe", []))
    for d in diags:
        assert os.path.isabs(d.filename)
        assert d.is_runtime and "key" in d.to_json()
    return diags


def small_state(torch):
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    return m.state_dict()


def test_plain_zip_is_clean_and_reader_sees_keys(tmp_path, torch):
    p = tmp_path / "plain.pt"
    torch.save(small_state(torch), p)
    assert check(p) == []
    ck = read_checkpoint(p)
    assert ck.format == "zip"
    assert ck.root["0.weight"].shape == (3, 4)
    assert ck.root["0.weight"].dtype == "torch.float32"
    assert ck.root["1.num_batches_tracked"].dtype == "torch.int64"
    assert ck.root.attrs["_metadata"]["1"]["version"] == 2


def test_any_top_folder_name(tmp_path, torch):
    buf = tmp_path / "weird name.bin"
    with open(buf, "wb") as f:  # file-object saves use the folder name "archive"
        torch.save(small_state(torch), f)
    with zipfile.ZipFile(buf) as z:
        assert any(n.startswith("archive/") for n in z.namelist())
    assert check(buf) == []
    assert read_checkpoint(buf).root["0.bias"].shape == (3,)


def test_legacy_format_is_not_a_finding(tmp_path, torch):
    p = tmp_path / "legacy.pt"
    torch.save(small_state(torch), p, _use_new_zipfile_serialization=False)
    assert check(p) == []
    ck = read_checkpoint(p)
    assert ck.format == "legacy"
    assert ck.root["0.weight"].shape == (3, 4)


def test_half_precision_dtypes_are_read(tmp_path, torch):
    p = tmp_path / "half.pt"
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in small_state(torch).items()}, p)
    ck = read_checkpoint(p)
    assert ck.root["0.weight"].dtype == "torch.float16"
    assert check(p) == []


def test_raw_pickle_named_pt_with_plain_data_is_clean(tmp_path):
    p = tmp_path / "raw.pt"
    p.write_bytes(pickle.dumps({"epoch": 3, "lr": [0.1, 0.01]}, protocol=2))
    assert check(p) == []
    assert read_checkpoint(p).format == "pickle"


def test_cuda_tagged_storages_are_ckpt108(tmp_path, torch, monkeypatch):
    import torch.serialization as ser

    monkeypatch.setattr(ser, "location_tag", lambda storage: "cuda:0")
    p = tmp_path / "cuda.pt"
    torch.save(small_state(torch), p)
    monkeypatch.undo()
    diags = check(p)
    assert codes(diags) == ["CKPT108"]
    assert "cuda:0" in diags[0].message
    assert diags[0].key == "0.bias"  # first key, sorted


def test_legacy_cuda_tagged(tmp_path, torch, monkeypatch):
    import torch.serialization as ser

    monkeypatch.setattr(ser, "location_tag", lambda storage: "mps")
    p = tmp_path / "mps.pt"
    torch.save(small_state(torch), p, _use_new_zipfile_serialization=False)
    monkeypatch.undo()
    diags = check(p)
    assert codes(diags) == ["CKPT108"] and "`mps`" in diags[0].message


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.9, 0.999])
def test_truncated_zip_is_ckpt109_only(tmp_path, torch, fraction):
    p = tmp_path / "t.pt"
    torch.save(small_state(torch), p)
    data = p.read_bytes()
    p.write_bytes(data[: max(1, int(len(data) * fraction))])
    diags = check(p)
    assert codes(diags) == ["CKPT109"], [d.message for d in diags]


@pytest.mark.parametrize("fraction", [0.05, 0.3, 0.6, 0.95])
def test_truncated_legacy(tmp_path, torch, fraction):
    p = tmp_path / "t.pt"
    torch.save(small_state(torch), p, _use_new_zipfile_serialization=False)
    data = p.read_bytes()
    p.write_bytes(data[: int(len(data) * fraction)])
    got = codes(check(p))
    assert "CKPT109" in got
    # a cut inside a pickle cannot be proven safe (fail closed): CKPT101 may accompany it
    assert set(got) <= {"CKPT101", "CKPT109"}


def _flip_in_member(path, member_suffix, offset_in_member=5):
    with zipfile.ZipFile(path) as z:
        info = next(i for i in z.infolist() if i.filename.endswith(member_suffix))
    raw = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26: info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    raw[start + offset_in_member] ^= 0x01
    path.write_bytes(bytes(raw))


def test_flipped_byte_in_data_pkl_reports_crc(tmp_path, torch):
    p = tmp_path / "flip.pt"
    torch.save(small_state(torch), p)
    _flip_in_member(p, "data.pkl", 40)
    diags = check(p)
    assert "CKPT109" in codes(diags)
    assert any("CRC" in d.message and "data.pkl" in d.message for d in diags if d.code == "CKPT109")


def test_flipped_opcode_in_data_pkl_is_crc_and_fail_closed(tmp_path, torch):
    p = tmp_path / "flip.pt"
    torch.save(small_state(torch), p)
    with zipfile.ZipFile(p) as z:
        info = next(i for i in z.infolist() if i.filename.endswith("data.pkl"))
    raw = bytearray(p.read_bytes())
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26: info.header_offset + 30])
    raw[info.header_offset + 30 + name_len + extra_len + 2] = 0xFF  # first opcode after PROTO
    p.write_bytes(bytes(raw))
    diags = check(p)
    assert codes(diags) == ["CKPT101", "CKPT109"]
    d109 = next(d for d in diags if d.code == "CKPT109")
    assert "CRC" in d109.message and "cannot be parsed" in d109.help


def test_flipped_byte_in_tensor_data_needs_data_crc(tmp_path, torch):
    p = tmp_path / "flipdata.pt"
    torch.save(small_state(torch), p)
    _flip_in_member(p, "/data/0", 3)
    assert read_checkpoint(p).problems == []  # tensor bytes are not read by default
    ck = read_checkpoint(p, data_crc=True)
    assert ck.crc_failed and "CRC" in ck.problems[0]


def test_storage_record_removed_from_zip(tmp_path, torch):
    src = tmp_path / "full.pt"
    torch.save(small_state(torch), src)
    dst = tmp_path / "holed.pt"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            if not info.filename.endswith("/data/2"):
                zout.writestr(info, zin.read(info.filename))
    diags = check(dst)
    assert codes(diags) == ["CKPT109"]
    assert "storage `2`" in diags[0].message and "missing" in diags[0].message


def test_storage_record_too_short(tmp_path, torch):
    src = tmp_path / "full.pt"
    torch.save({"w": torch.zeros(100)}, src)
    dst = tmp_path / "short.pt"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            zout.writestr(info, data[:40] if info.filename.endswith("/data/0") else data)
    diags = check(dst)
    assert codes(diags) == ["CKPT109"] and "truncated" in diags[0].message


def test_safetensors_and_bad_header(tmp_path, torch):
    from safetensors.torch import save_file

    p = tmp_path / "m.safetensors"
    save_file({k: v.contiguous() for k, v in small_state(torch).items()}, str(p))
    assert check(p) == []
    ck = read_checkpoint(p)
    assert ck.format == "safetensors" and ck.root["0.weight"].shape == (3, 4)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(struct.pack("<Q", 10) + b"{not json}")
    diags = check(bad)
    assert codes(diags) == ["CKPT109"] and "safetensors header" in diags[0].message
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(p.read_bytes()[:-20])
    diags = check(cut)
    assert codes(diags) == ["CKPT109"] and "truncated" in diags[0].message


def _sharded(tmp_path, torch, fmt="safetensors"):
    from safetensors.torch import save_file

    sd = small_state(torch)
    keys = sorted(sd)
    half = len(keys) // 2
    shards = {"model-00001-of-00002": keys[:half], "model-00002-of-00002": keys[half:]}
    weight_map = {}
    for name, ks in shards.items():
        fname = f"{name}.{'safetensors' if fmt == 'safetensors' else 'bin'}"
        part = {k: sd[k].contiguous() for k in ks}
        if fmt == "safetensors":
            save_file(part, str(tmp_path / fname))
        else:
            torch.save(part, tmp_path / fname)
        weight_map.update({k: fname for k in ks})
    index = tmp_path / f"model.{fmt}.index.json"
    index.write_text(json.dumps({"metadata": {"total_size": 1}, "weight_map": weight_map}))
    return index, weight_map


@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
def test_sharded_index(tmp_path, torch, fmt):
    index, weight_map = _sharded(tmp_path, torch, fmt)
    assert check(index) == []
    ck = read_checkpoint(index)
    assert sorted(ck.root) == sorted(weight_map)
    missing_shard = tmp_path / sorted(set(weight_map.values()))[1]
    missing_shard.unlink()
    diags = check(index)
    assert codes(diags) == ["CKPT109"]
    assert diags[0].filename == str(missing_shard) and "does not exist" in diags[0].message


@pytest.mark.parametrize(
    "content, words",
    [
        (b"", "empty"),
        (b"<!DOCTYPE html><html><body>404</body></html>", "HTML"),
        (b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12\n", "git-LFS"),
        (b"hello, this is a text file\n", "not a checkpoint"),
        (b"PK\x03\x04garbage", "zip"),
    ],
)
def test_non_checkpoints_are_ckpt109_only(tmp_path, content, words):
    p = tmp_path / "model.pt"
    p.write_bytes(content)
    diags = check(p)
    assert codes(diags) == ["CKPT109"]
    assert words in diags[0].message


def test_zip_without_data_pkl(tmp_path):
    p = tmp_path / "a.pt"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("readme.txt", "hi")
    diags = check(p)
    assert codes(diags) == ["CKPT109"] and "data.pkl" in diags[0].message


def test_missing_file(tmp_path):
    diags = check(tmp_path / "nope.pt")
    assert codes(diags) == ["CKPT109"] and "does not exist" in diags[0].message


def test_full_model_pickle_is_ckpt102_and_lists_classes(tmp_path, torch):
    p = tmp_path / "full.pt"
    torch.save(torch.nn.Sequential(torch.nn.Linear(2, 2)), p)
    diags = check(p)
    assert codes(diags) == ["CKPT101", "CKPT102"]
    d101 = next(d for d in diags if d.code == "CKPT101")
    # building the classes runs their code: an error that says so (CKPT102 says what to do)
    assert "torch.nn.modules.container.Sequential" in d101.message and d101.severity == "error"
    assert "runs code" in d101.message
    d102 = next(d for d in diags if d.code == "CKPT102")
    assert "torch.nn.modules.container.Sequential" in d102.message


def test_safe_globals_silence_ckpt101_for_trusted_classes(tmp_path, torch):
    p = tmp_path / "full.pt"
    torch.save({"w": torch.zeros(1), "cfg": Cfg(3)}, p)
    diags = check(p)
    assert codes(diags) == ["CKPT101"] and f"{__name__}.Cfg" in diags[0].message
    assert check(p, safe=[f"{__name__}.Cfg"]) == []
    assert check(p, safe=[f"{__name__.rsplit('.', 1)[0]}.*"]) == []


class Cfg:
    def __init__(self, n):
        self.n = n


def test_version_skew(tmp_path, torch):
    p = tmp_path / "v.pt"
    torch.save({"torch_version": "2.5.1", "state_dict": small_state(torch)}, p)
    assert check(p, tv="2.5") == []
    diags = check(p, tv="2.1")
    assert codes(diags) == ["CKPT111"] and "2.5.1" in diags[0].message and "2.1" in diags[0].message
    old = codes(check(p, tv="1.4"))
    assert old == ["CKPT111", "CKPT111"]  # newer torch recorded, and the zip format itself
    legacy = tmp_path / "legacy.pt"
    torch.save(small_state(torch), legacy, _use_new_zipfile_serialization=False)
    assert check(legacy, tv="1.4") == []


def test_version_skew_new_dtype(tmp_path, torch):
    p = tmp_path / "f8.pt"
    torch.save({"w": torch.zeros(4).to(torch.float8_e4m3fn)}, p)
    diags = check(p, tv="2.0")
    assert codes(diags) == ["CKPT111"] and "torch.float8_e4m3fn" in diags[0].message
    assert check(p, tv="2.1") == []


def test_torchscript_archive_is_an_error_that_says_it_runs_code(tmp_path, torch):
    """torch.load hands an archive with constants.pkl to torch.jit.load, which runs the
    TorchScript it carries; weights_only=True refuses it."""
    p = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(p))
    diags = check(p)
    d101 = [d for d in diags if d.code == "CKPT101"]
    assert d101 and d101[0].severity == "error", diags
    assert "TorchScript" in d101[0].message and "runs code" in d101[0].message
    with pytest.raises(Exception):
        torch.load(p, weights_only=True)


@pytest.mark.slow
@pytest.mark.parametrize("compress", [3, ("gzip", 3), ("bz2", 3), ("xz", 3), ("lzma", 3)])
def test_compressed_joblib_pickles_are_read_as_joblib_reads_them(tmp_path, compress):
    """joblib.load decompresses before unpickling: a payload inside runs code."""
    joblib = pytest.importorskip("joblib")
    marker = tmp_path / "ran"
    path = tmp_path / "model.joblib"
    joblib.dump({"model": Payload(marker), "n": 3}, path, compress=compress)
    diags = check(path)
    assert [d.code for d in diags if d.code == "CKPT101"] == ["CKPT101"], diags
    assert "runs code" in diags[0].message and "`posix.system`" in diags[0].message
    proof = subprocess.run([sys.executable, "-c", f"import joblib; joblib.load({str(path)!r})"],
                           capture_output=True, timeout=HANG)
    assert marker.exists(), proof.stderr


def test_folder_picks_compressed_pickles_and_skips_other_archives(tmp_path):
    import gzip
    import pickle as stdlib_pickle

    with gzip.open(tmp_path / "state.pkl.gz", "wb") as f:
        stdlib_pickle.dump(Payload(tmp_path / "ran"), f)
    with gzip.open(tmp_path / "notes.txt.gz", "wb") as f:
        f.write(b"just text\n")
    diags, notes = verify([], [tmp_path], root=tmp_path, torch_version=None, safe_globals=[])
    assert [(pathlib.Path(d.filename).name, d.code) for d in diags] == [("state.pkl.gz", "CKPT101")]
    assert any("1 compressed files that hold no pickle" in n for n in notes), notes


class Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))
