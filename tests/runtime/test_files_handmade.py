"""The checkpoint reader and `ckptlint verify FILE` on checkpoints built without torch.

test_files.py builds its checkpoints with torch.save and so only runs where torch is installed
(3.11 here); verify itself never imports torch, so these run on every supported Python.
"""

from __future__ import annotations

import collections
import json
import os
import struct
import zipfile

import pytest

from ckptlint.verify import verify
from ckptlint.reader.reader import read_checkpoint

from ._util import codes, run_cli, run_json
from .handmade import Tensor, save_zip, small_state


def check(path):
    diags, _notes = verify([], [path], root=path.parent, torch_version=None, safe_globals=[])
    return diags


@pytest.mark.parametrize("folder", ["archive", "weird name"])
def test_plain_zip_is_clean_and_reader_sees_keys(tmp_path, folder):
    p = tmp_path / "plain.pt"
    save_zip(small_state(), p, folder=folder)
    assert check(p) == []
    ck = read_checkpoint(p)
    assert ck.format == "zip" and ck.problems == []
    assert sorted(ck.root) == sorted(small_state())
    assert ck.root["0.weight"].shape == (3, 4)
    assert ck.root["0.weight"].dtype == "torch.float32"
    assert ck.root["1.num_batches_tracked"].dtype == "torch.int64"


def test_half_precision_dtype_is_read(tmp_path):
    p = tmp_path / "half.pt"
    save_zip({"w": Tensor([1.0, 2.0], (2,), storage="HalfStorage")}, p)
    assert read_checkpoint(p).root["w"].dtype == "torch.float16"
    assert check(p) == []


def test_cuda_tagged_storages_are_ckpt108(tmp_path):
    p = tmp_path / "cuda.pt"
    state = {k: Tensor(t.values, t.shape, t.storage, location="cuda:0") for k, t in small_state().items()}
    save_zip(state, p)
    diags = check(p)
    assert codes(diags) == ["CKPT108"]
    assert "cuda:0" in diags[0].message
    assert diags[0].key == "0.bias"  # first key, sorted


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.9, 0.999])
def test_truncated_zip_is_ckpt109_only(tmp_path, fraction):
    p = tmp_path / "t.pt"
    save_zip(small_state(), p)
    data = p.read_bytes()
    p.write_bytes(data[: max(1, int(len(data) * fraction))])
    assert codes(check(p)) == ["CKPT109"]


def _member_start(path, suffix):
    with zipfile.ZipFile(path) as z:
        info = next(i for i in z.infolist() if i.filename.endswith(suffix))
    raw = path.read_bytes()
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26: info.header_offset + 30])
    return info.header_offset + 30 + name_len + extra_len


def test_flipped_byte_in_data_pkl_reports_crc(tmp_path):
    p = tmp_path / "flip.pt"
    save_zip(small_state(), p)
    raw = bytearray(p.read_bytes())
    raw[_member_start(p, "data.pkl") + 40] ^= 0x01
    p.write_bytes(bytes(raw))
    diags = check(p)
    assert any(d.code == "CKPT109" and "CRC" in d.message and "data.pkl" in d.message for d in diags)


def test_flipped_byte_in_tensor_data_needs_data_crc(tmp_path):
    p = tmp_path / "flipdata.pt"
    save_zip(small_state(), p)
    raw = bytearray(p.read_bytes())
    raw[_member_start(p, "/data/0") + 3] ^= 0x01
    p.write_bytes(bytes(raw))
    assert read_checkpoint(p).problems == []  # tensor bytes are not read by default
    ck = read_checkpoint(p, data_crc=True)
    assert ck.crc_failed and "CRC" in ck.problems[0]


def test_storage_record_removed_or_short(tmp_path):
    holed = tmp_path / "holed.pt"
    save_zip(small_state(), holed, skip_storage="2")
    diags = check(holed)
    assert codes(diags) == ["CKPT109"]
    assert "storage `2`" in diags[0].message and "missing" in diags[0].message
    short = tmp_path / "short.pt"
    save_zip(small_state(), short, short_storage="0")
    diags = check(short)
    assert codes(diags) == ["CKPT109"] and "truncated" in diags[0].message


def test_safetensors_and_bad_header(tmp_path):
    np = pytest.importorskip("numpy")
    from safetensors.numpy import save_file

    p = tmp_path / "m.safetensors"
    save_file({"0.weight": np.zeros((3, 4), dtype=np.float32), "0.bias": np.zeros(3, dtype=np.float32)}, str(p))
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


def test_sharded_index(tmp_path):
    state = small_state()
    keys = sorted(state)
    shards = {"model-00001-of-00002.bin": keys[:3], "model-00002-of-00002.bin": keys[3:]}
    weight_map = {}
    for fname, ks in shards.items():
        save_zip({k: state[k] for k in ks}, tmp_path / fname)
        weight_map.update({k: fname for k in ks})
    index = tmp_path / "model.bin.index.json"
    index.write_text(json.dumps({"metadata": {"total_size": 1}, "weight_map": weight_map}))
    assert check(index) == []
    assert sorted(read_checkpoint(index).root) == keys
    missing = tmp_path / "model-00002-of-00002.bin"
    missing.unlink()
    diags = check(index)
    assert codes(diags) == ["CKPT109"]
    assert diags[0].filename == str(missing) and "does not exist" in diags[0].message


def test_verify_command_line_on_handmade_files(tmp_path):
    save_zip(small_state(), tmp_path / "good.pt")
    proc = run_cli("good.pt", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    save_zip(small_state(), tmp_path / "holed.pt", skip_storage="1")
    proc, data = run_json("good.pt", "holed.pt", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert [d["code"] for d in data] == ["CKPT109"]
    assert data[0]["filename"].endswith("holed.pt")


def test_each_file_is_read_once_per_run(tmp_path, monkeypatch):
    """The ZeRO optimizer file the layout check reads, the shards an index reads and a file
    that two entries and the command line name: each is read once in a run, and each check
    says what it says alone (the index's word on a shard is not the shard's own)."""
    import ckptlint.verify.reads as reads_module
    from ckptlint.verify import parse_entries

    tag = tmp_path / "ds" / "global_step1"
    tag.mkdir(parents=True)
    for rank in (0, 1, 3):  # rank 2 of 4 was never written
        save_zip({"optimizer_state_dict": {"zero_stage": 2, "partition_count": [4]}},
                 tag / f"zero_pp_rank_{rank}_mp_rank_00_optim_states.pt")
    state, hf = small_state(), tmp_path / "hf"
    hf.mkdir()
    keys, weight_map = sorted(state), {"extra.weight": "model-00001-of-00002.bin"}  # not in that shard
    for n, part in enumerate((keys[:3], keys[3:]), 1):
        save_zip({k: state[k] for k in part}, hf / f"model-0000{n}-of-00002.bin")
        weight_map.update(dict.fromkeys(part, f"model-0000{n}-of-00002.bin"))
    index = hf / "model.bin.index.json"
    index.write_text(json.dumps({"weight_map": weight_map}))
    save_zip(state, tmp_path / "single.pt")
    entries = parse_entries([{"path": "single.pt"}, {"path": "single.pt"}, {"path": "hf/*.bin"}],
                            tmp_path / "pyproject.toml")
    reads = collections.Counter()
    real = reads_module.read_checkpoint

    def counting(path, **kw):
        reads[os.path.relpath(path, tmp_path)] += 1
        return real(path, **kw)

    monkeypatch.setattr(reads_module, "read_checkpoint", counting)
    files = [tmp_path / "ds", *sorted(hf.glob("*.bin")), index, tmp_path / "single.pt"]
    diags, _ = verify(entries, files, root=tmp_path, torch_version=None, safe_globals=[])
    every = [f"ds/global_step1/zero_pp_rank_{r}_mp_rank_00_optim_states.pt" for r in (0, 1, 3)]
    every += ["hf/model-00001-of-00002.bin", "hf/model-00002-of-00002.bin", "hf/model.bin.index.json", "single.pt"]
    assert reads == collections.Counter(every)
    said = [(os.path.relpath(d.filename, tmp_path), d.code, f"{d.message} {d.help}") for d in diags]
    assert [s[:2] for s in said] == [("ds/global_step1/zero_pp_rank_2_mp_rank_00_optim_states.pt", "CKPT109"),
                                     ("hf/model-00001-of-00002.bin", "CKPT109")], said
    assert "4 data-parallel ranks" in said[0][2] and "`extra.weight`" in said[1][2]
