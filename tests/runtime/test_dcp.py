"""torch.distributed.checkpoint folders, written by real DCP in the test: one process, and
two processes over gloo with FSDP2 (`fully_shard`), then damaged copies. Each finding is
checked against what DCP itself does with the folder."""

from __future__ import annotations

import os
import pathlib
import pickle
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

from tests.helpers import HANG
from ._util import cli_env, codes, run_json, write_project

pytestmark = pytest.mark.slow  # servers, subprocesses, corpora: the whole suite runs them

TWO_RANKS = textwrap.dedent('''
    import os, sys, torch, torch.distributed as dist
    import torch.distributed.checkpoint as dcp

    def build():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(8, 6), torch.nn.ReLU(), torch.nn.Linear(6, 4))

    def main(rank, world, out, port):
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
        dist.init_process_group("gloo", rank=rank, world_size=world)
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard
        from torch.distributed.checkpoint.state_dict import get_state_dict
        model = build()
        mesh = init_device_mesh("cpu", (world,))
        for m in model:
            if isinstance(m, torch.nn.Linear):
                fully_shard(m, mesh=mesh)
        fully_shard(model, mesh=mesh)
        opt = torch.optim.Adam(model.parameters())
        model(torch.randn(3, 8)).sum().backward()
        opt.step()
        msd, osd = get_state_dict(model, opt)
        dcp.save({"model": msd, "optim": osd, "step": 3}, checkpoint_id=out)
        dist.destroy_process_group()

    if __name__ == "__main__":
        import torch.multiprocessing as mp
        mp.spawn(main, args=(2, sys.argv[1], sys.argv[2]), nprocs=2)
''')

MODELS = textwrap.dedent('''
    import torch

    def build(hidden=6):
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(8, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 4))
''')


class Payload:
    """A bytes item that runs a command when DCP loads it (torch.load(weights_only=False))."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _free_port() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def _save_two_ranks(root: pathlib.Path) -> dict:
    """Run the two-process save (once per session, shared by the xdist workers); a second
    try when the first one dies (gloo's rendezvous can fail on a loaded machine)."""
    script = root / "save.py"
    script.write_text(TWO_RANKS)
    env = dict(os.environ, GLOO_SOCKET_IFNAME="lo")
    errors = []
    for attempt in range(2):
        out = root / f"ckpt{attempt}"
        proc = subprocess.run([sys.executable, str(script), str(out), _free_port()],
                              capture_output=True, text=True, timeout=HANG, env=env)
        if proc.returncode == 0 and (out / ".metadata").exists():
            return {"path": str(out), "errors": errors}
        errors.append(proc.stderr[-800:])
    return {"path": None, "errors": errors}


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    pytest.importorskip("torch")
    from .corpus.run import once_per_session

    made = once_per_session(tmp_path_factory, "dcp-two-ranks", _save_two_ranks)
    if made["path"] is None:
        pytest.skip(f"a two-process gloo run is not possible here: {made['errors'][-1]}")
    return pathlib.Path(made["path"])


@pytest.fixture
def one_rank(tmp_path, torch):
    import torch.distributed.checkpoint as dcp

    torch.manual_seed(0)
    folder = tmp_path / "ckpt"
    dcp.save({"model": torch.nn.Linear(4, 2).state_dict(), "step": 7, "extra": {"name": "run1"}},
             checkpoint_id=str(folder))
    return folder


def copy(folder, tmp_path) -> pathlib.Path:
    out = tmp_path / "copy"
    shutil.copytree(folder, out)
    return out


def rewrite_metadata(folder, change) -> None:
    """Edit `.metadata` with torch's own classes (the test trusts the file it wrote)."""
    path = folder / ".metadata"
    with open(path, "rb") as f:
        meta = pickle.load(f)
    change(meta)
    path.write_bytes(pickle.dumps(meta))


def test_real_dcp_folders_are_clean_as_folders_and_as_staged_files(one_rank, two_ranks):
    for folder in (one_rank, two_ranks):
        proc, diags = run_json(folder)
        assert proc.returncode == 0 and diags == [], diags
        staged = [folder / ".metadata", *sorted(folder.glob("*.distcp"))]
        proc, diags = run_json("--pre-commit", *staged)
        assert proc.returncode == 0 and diags == [], diags


def test_deleted_and_truncated_shards_name_the_rank_file(two_ranks, tmp_path):
    folder = copy(two_ranks, tmp_path)
    (folder / "__1_0.distcp").unlink()
    _, diags = run_json(folder)
    assert [(pathlib.Path(d["filename"]).name, d["code"]) for d in diags] == [("__1_0.distcp", "CKPT109")]
    assert "does not exist" in diags[0]["message"] and "`.metadata`" in diags[0]["message"]
    shutil.rmtree(folder)
    folder = copy(two_ranks, tmp_path)
    shard = folder / "__0_0.distcp"
    shard.write_bytes(shard.read_bytes()[:-500])
    _, diags = run_json(folder)
    assert ("__0_0.distcp", "CKPT109") in [(pathlib.Path(d["filename"]).name, d["code"]) for d in diags]
    assert any("truncated" in d["message"] for d in diags)


def test_chunks_that_overlap_or_leave_a_gap(two_ranks, tmp_path, torch):
    from torch.distributed.checkpoint.metadata import ChunkStorageMetadata

    def overlap(meta):
        md = meta.state_dict_metadata["model.0.weight"]
        first, second = md.chunks
        md.chunks[1] = ChunkStorageMetadata(offsets=torch.Size([2, 0]), sizes=second.sizes)

    def gap(meta):
        meta.state_dict_metadata["model.2.bias"].chunks.pop()

    for change, words in ((overlap, "overlap"), (gap, "gap")):
        folder = copy(two_ranks, tmp_path)
        rewrite_metadata(folder, change)
        _, diags = run_json(folder)
        assert [(pathlib.Path(d["filename"]).name, d["code"]) for d in diags] == [(".metadata", "CKPT109")], diags
        assert words in diags[0]["message"], diags
        shutil.rmtree(folder)


def test_hostile_bytes_item_runs_under_dcp_and_verify_says_so(tmp_path, torch):
    import torch.distributed.checkpoint as dcp

    marker = tmp_path / "ran"
    folder = tmp_path / "ckpt"
    dcp.save({"model": torch.nn.Linear(2, 2).state_dict(), "extra": {"hook": Payload(marker)}},
             checkpoint_id=str(folder))
    assert not marker.exists()
    proc, diags = run_json(folder, cwd=tmp_path)
    assert not marker.exists(), "verify ran the payload"
    assert proc.returncode == 1
    hostile = [d for d in diags if d["code"] == "CKPT101" and d["severity"] == "error"]
    assert hostile and "runs code" in hostile[0]["message"] and "`posix.system`" in hostile[0]["message"]
    assert "extra.hook" in hostile[0]["help"] and hostile[0]["filename"].endswith(".distcp")
    # the proof: DCP's own loader runs it
    loader = ("import sys, torch.distributed.checkpoint.format_utils as f; "
              "f.dcp_to_torch_save(sys.argv[1], sys.argv[2])")
    subprocess.run([sys.executable, "-c", loader, str(folder), str(tmp_path / "out.pt")],
                   capture_output=True, env=cli_env(), timeout=HANG)
    assert marker.exists()


def test_hostile_metadata_is_an_error(one_rank):
    marker = one_rank / "ran"
    command = f"touch {marker}".encode()
    (one_rank / ".metadata").write_bytes(
        b"\x80\x02cposix\nsystem\nX" + len(command).to_bytes(4, "little") + command + b"\x85R.")
    proc, diags = run_json(one_rank)
    assert proc.returncode == 1 and not marker.exists()
    meta = [d for d in diags if d["filename"].endswith(".metadata")]
    assert [d["code"] for d in meta if d["code"] == "CKPT101"] and "runs code" in meta[0]["message"], meta


def _entries(tmp_path, folder, **kw):
    opts = "".join(f"{k} = {v}\n" for k, v in kw.items())
    write_project(tmp_path, MODELS, f'[[tool.ckptlint.checkpoints]]\npath = "{folder}"\n'
                  f'model = "proj_models.nets:build"\n{opts}')


def test_a_dcp_folder_against_its_model_matches_what_dcp_load_does(two_ranks, tmp_path, torch):
    import torch.distributed.checkpoint as dcp

    sys.path.insert(0, str(tmp_path))
    try:
        _entries(tmp_path, two_ranks)
        proc, diags = run_json(cwd=tmp_path)
        assert proc.returncode == 0 and diags == [], diags
        from proj_models.nets import build

        dcp.load({"model": build().state_dict()}, checkpoint_id=str(two_ranks))  # DCP agrees

        (tmp_path / "pyproject.toml").unlink()
        _entries(tmp_path, two_ranks, kwargs="{ hidden = 5 }")
        proc, diags = run_json(cwd=tmp_path)
        got = sorted({d["code"] for d in diags})
        assert "CKPT105" in got and "CKPT110" in got, diags
        assert any(d["key"] == "0.weight" and "(6, 8)" in d["message"] for d in diags if d["code"] == "CKPT105")
        from torch.distributed.checkpoint.api import CheckpointException

        with pytest.raises(CheckpointException, match="Size mismatch"):  # and DCP refuses that model
            dcp.load({"model": build(5).state_dict()}, checkpoint_id=str(two_ranks))
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("proj_models.nets", None)
        sys.modules.pop("proj_models", None)


def test_missing_key_in_a_dcp_folder(one_rank, tmp_path, torch):
    write_project(tmp_path, "import torch\n\ndef build():\n    return torch.nn.Bilinear(4, 4, 2)\n",
                  f'[[tool.ckptlint.checkpoints]]\npath = "{one_rank}"\nmodel = "proj_models.nets:build"\n')
    _, diags = run_json(cwd=tmp_path)
    assert codes(diags) == ["CKPT105"] and diags[0]["key"] == "weight", diags


def test_deepspeed_and_accelerate_folders_report_a_missing_rank_file(tmp_path, torch):
    """The layouts written with torch the way DeepSpeed and accelerate write them; a ZeRO
    optimizer file records the data-parallel world size (`partition_count`)."""
    ds = tmp_path / "ds"
    tag = ds / "global_step10"
    tag.mkdir(parents=True)
    (ds / "latest").write_text("global_step10")
    torch.save({"module": torch.nn.Linear(2, 2).state_dict(), "ds_version": "0.15.0"},
               tag / "mp_rank_00_model_states.pt")
    for rank in (0, 1, 3):  # rank 2 of 4 was never written
        torch.save({"optimizer_state_dict": {"zero_stage": 2, "partition_count": [4],
                                             "single_partition_of_fp32_groups": [torch.zeros(2)]}},
                   tag / f"zero_pp_rank_{rank}_mp_rank_00_optim_states.pt")
    acc = tmp_path / "acc"
    acc.mkdir()
    torch.save(torch.nn.Linear(2, 2).state_dict(), acc / "pytorch_model.bin")
    for rank in (0, 2):
        torch.save({"python": 1, "torch": torch.get_rng_state()}, acc / f"random_states_{rank}.pkl")
    _, diags = run_json(ds, acc)
    missing = sorted((pathlib.Path(d["filename"]).name, d["code"]) for d in diags)
    assert missing == [("random_states_1.pkl", "CKPT109"), ("zero_pp_rank_2_mp_rank_00_optim_states.pt", "CKPT109")]
    assert any("4 data-parallel ranks" in (d["help"] or "") for d in diags)
    # the pre-commit mode also checks the folders of the files it finds: still said once
    _, hook = run_json("--pre-commit", ds, acc)
    assert sorted((pathlib.Path(d["filename"]).name, d["code"]) for d in hook) == missing
    (ds / "latest").write_text("global_step20")
    _, diags = run_json(ds)
    assert any(d["filename"].endswith("latest") and "global_step20" in d["message"] for d in diags)


def test_a_numpy_bytes_item_gets_the_whole_allowlist_it_needs(tmp_path, torch):
    """A DCP bytes item holding a numpy array needs its dtype's class allowed too (numpy 2
    builds `numpy.dtypes.Float64DType` without naming it): the suggestion names it, as it does
    for the same array in a plain torch file."""
    import numpy as np
    import torch.distributed.checkpoint as dcp

    folder = tmp_path / "ckpt"
    dcp.save({"model": torch.nn.Linear(2, 2).state_dict(), "extra": {"stats": np.zeros(3)}},
             checkpoint_id=str(folder))
    torch.save({"stats": np.zeros(3)}, tmp_path / "plain.pt")
    _, diags = run_json(folder, tmp_path / "plain.pt", cwd=tmp_path)
    said = {pathlib.Path(d["filename"]).suffix: d["help"] for d in diags if d["code"] == "CKPT101"}
    assert set(said) == {".distcp", ".pt"}, diags
    wanted = re.search(r"safe_globals\(\[(.*?)\]\)", said[".pt"]).group(1)
    assert "numpy.dtypes.Float64DType" in wanted
    assert re.search(r"safe_globals\(\[(.*?)\]\)", said[".distcp"]).group(1) == wanted
