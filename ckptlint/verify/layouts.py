"""Multi-file training checkpoints: which files a layout needs, beyond each file on its own.

- DeepSpeed (``engine.save_checkpoint``): ``<dir>/latest`` names a tag folder holding
  ``mp_rank_XX_model_states.pt`` (or, with ZeRO-3, ``zero_pp_rank_N_mp_rank_XX_model_states.pt``)
  and one ``[bf16_]zero_pp_rank_N_mp_rank_XX_optim_states.pt`` per data-parallel rank; the
  optimizer files record how many ranks there were (``partition_count``), which is how a
  missing rank file is told from a smaller job.
- accelerate (``Accelerator.save_state``): ``random_states_N.pkl`` per process, next to
  ``model.safetensors``/``pytorch_model.bin``, ``optimizer.bin``, ``scheduler.bin``.

Every file of these folders is also checked on its own (they are pickles or torch files).
Lightning's ``.ckpt`` and Hugging Face shards are single files / index files, handled by the
reader; DCP folders by dcp.py.
"""

from __future__ import annotations

import re
from typing import Callable, Dict, List, Set, Tuple

from ckptlint.reader import source
from ckptlint.reader.reader import Checkpoint

Read = Callable[[str], Checkpoint]  # the run's reader of a checkpoint file (verify/reads.py)

_OPTIM = re.compile(r"(?:bf16_)?zero_pp_rank_(\d+)_mp_rank_(\d+)_optim_states\.pt")
_MODEL = re.compile(r"(?:zero_pp_rank_(\d+)_)?mp_rank_(\d+)_model_states\.pt")
_RANDOM = re.compile(r"random_states_(\d+)\.pkl")


def problems(folder: str, names: List[str], read: Read) -> List[Tuple[str, str]]:
    """(path, message) for what the layout of one folder's files says is missing; ``read``
    reads a checkpoint file the layout needs (a ZeRO optimizer file's rank count)."""
    out: List[Tuple[str, str]] = []
    if "latest" in names:
        out += _latest(folder)
    out += _deepspeed(folder, names, read)
    ranks = sorted(int(m.group(1)) for m in map(_RANDOM.fullmatch, names) if m)
    out += _gaps(folder, ranks, "random_states_{}.pkl", "accelerate's per-process RNG states")
    return out


def _latest(folder: str) -> List[Tuple[str, str]]:
    path = source.join(folder, "latest")
    try:
        with source.open_file(path) as f:
            tag = f.read(4096).decode("utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return [(path, "DeepSpeed's `latest` file cannot be read")]
    if tag and "/" not in tag and not source.isdir(source.join(folder, tag)):
        return [(path, f"DeepSpeed's `latest` names the tag `{tag}`, but there is no folder `{tag}` here: "
                 "`load_checkpoint` will fail")]
    return []


def _deepspeed(folder: str, names: List[str], read: Read) -> List[Tuple[str, str]]:
    out: List[Tuple[str, str]] = []
    optim: Dict[int, Set[int]] = {}  # model-parallel rank -> data-parallel ranks present
    prefix = {}
    for name in names:
        m = _OPTIM.fullmatch(name)
        if m:
            optim.setdefault(int(m.group(2)), set()).add(int(m.group(1)))
            prefix[int(m.group(2))] = name.split("zero_pp_rank_")[0]
    for mp, ranks in sorted(optim.items()):
        sample = source.join(folder, f"{prefix[mp]}zero_pp_rank_{min(ranks)}_mp_rank_{mp:02d}_optim_states.pt")
        expected = _partition_count(read(sample))
        want = set(range(expected if expected else max(ranks) + 1))
        for rank in sorted(want - ranks):
            name = f"{prefix[mp]}zero_pp_rank_{rank}_mp_rank_{mp:02d}_optim_states.pt"
            why = f"the optimizer states record {expected} data-parallel ranks" if expected else "its neighbours exist"
            out.append((source.join(folder, name), f"DeepSpeed rank file `{name}` is missing ({why}): "
                        "`load_checkpoint` and zero_to_fp32 will fail"))
    models = sorted(int(m.group(2)) for m in map(_MODEL.fullmatch, names) if m and m.group(1) is None)
    out += _gaps(folder, models, "mp_rank_{:02d}_model_states.pt", "DeepSpeed's model-parallel model states")
    return out


def _partition_count(ck: Checkpoint) -> int:
    """The data-parallel world size a ZeRO optimizer file records, read inertly (0: unknown)."""
    root = ck.root
    state = root.get("optimizer_state_dict") if isinstance(root, dict) else None
    count = state.get("partition_count") if isinstance(state, dict) else None
    if isinstance(count, list):
        count = max((c for c in count if type(c) is int), default=None)
    return count if type(count) is int and 0 < count <= 1 << 20 else 0


def _gaps(folder: str, ranks: List[int], pattern: str, what: str) -> List[Tuple[str, str]]:
    if not ranks:
        return []
    missing = sorted(set(range(max(ranks) + 1)) - set(ranks))
    return [(source.join(folder, pattern.format(r)), f"`{pattern.format(r)}` is missing ({what}: ranks "
             f"0-{max(ranks)} are expected, {len(ranks)} are here)") for r in missing]
