"""Evaluate the semantic rules on real PyTorch code bases (not a unit test).

Downloads pinned source distributions from PyPI (`pip download --no-binary`), unpacks them
under benchmarks/.corpora/ (gitignored), lints each with ckptlint (JSON output) and prints the
findings per rule per package. `--show CODE` prints each finding of that rule with three lines
of context, for checking by hand.

    python benchmarks/eval_corpus.py [--select CKPT001,...] [--show CKPT001] [--only timm]
    python benchmarks/eval_corpus.py --corpus dist --show CKPT014,CKPT015,CKPT053
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CORPORA = HERE / ".corpora"

PACKAGES = [
    ("timm", "1.0.22"),
    ("accelerate", "1.10.1"),
    ("peft", "0.17.1"),
    ("ultralytics", "8.3.0"),
    ("basicsr", "1.4.2"),
    ("lightning", "2.5.0"),
    ("sentence-transformers", "5.1.0"),
    ("pytorch-ignite", "0.5.2"),
    ("gfpgan", "1.3.8"),
    ("realesrgan", "0.3.0"),
    ("stable-baselines3", "2.3.2"),
    ("salesforce-lavis", "1.0.2"),
    ("deepspeed", "0.15.0"),
    ("simpletransformers", "0.70.1"),
    ("pykeen", "1.10.2"),
    ("flair", "0.15.1"),
    ("deepctr-torch", "0.2.9"),
    ("stylegan2-pytorch", "1.8.9"),
    ("denoising-diffusion-pytorch", "2.1.1"),
    ("imagen-pytorch", "1.26.3"),
    ("dalle2-pytorch", "1.15.6"),
    # not used while developing the rules (issue 13): a new user's first run
    ("espnet", "202511"),
    ("monai", "1.6.1"),
    ("yolov5", "7.0.14"),
    ("mmengine", "0.10.7"),
]
SEMANTIC = "CKPT001,CKPT005,CKPT006,CKPT007,CKPT010,CKPT013,CKPT050,CKPT051,CKPT052"

# Distributed training code (FSDP, DCP, DeepSpeed, accelerate), for the distributed rules.
# torchtune and mmengine publish no usable sdist: their pure-Python wheels hold the same code.
DISTRIBUTED = [
    ("torchtitan", "0.3.0"),
    ("torchtune", "0.6.1"),
    ("lightning", "2.5.0"),
    ("accelerate", "1.10.1"),
    ("deepspeed", "0.15.0"),
    ("mmengine", "0.10.7"),
    ("transformers", "4.57.1"),
    ("mosaicml", "0.32.1"),
    ("llm-foundry", "0.22.0"),
    ("ai2-olmo", "0.6.0"),
    ("ai2-olmo-core", "3.0.0"),
    ("litgpt", "0.5.13"),
    ("nanotron", "0.4"),
    ("fairscale", "0.4.13"),
    ("trl", "0.24.0"),
    ("llama-recipes", "0.0.4.post1"),
    ("verl", "0.9.1"),
    ("openrlhf", "0.11.2"),
    ("axolotl", "0.19.0"),
    ("colossalai", "0.5.0"),
    ("torchft", "0.2.0"),
    ("fms-hf-tuning", "3.2.2"),
    ("fairseq", "0.12.2"),
    ("open-clip-torch", "3.3.0"),
    ("megatron-core", "0.15.3"),
    ("nemo-toolkit", "3.0.0"),
]
DIST_RULES = "CKPT014,CKPT015,CKPT053"


def fetch(name: str, version: str) -> Path:
    """The unpacked source of one pinned release: its sdist, else its wheel (a wheel holds the
    same .py files; some sdists cannot even be downloaded, since pip runs their setup.py)."""
    dest = CORPORA / f"{name}-{version}"
    if dest.is_dir():
        return dest
    dl = CORPORA / "_downloads"
    dl.mkdir(parents=True, exist_ok=True)
    archive = _downloaded(dl, name, version)
    if archive is None:
        # --no-build-isolation: some setup.py files import torch to read their metadata; pip has
        # saved the archive by then even when that step fails, and the archive is all we need
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-build-isolation",
             "--no-binary", ":all:", f"{name}=={version}", "-d", str(dl)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        archive = _downloaded(dl, name, version)
    if archive is None:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
             f"{name}=={version}", "-d", str(dl)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        archive = _downloaded(dl, name, version)
    if archive is None:
        raise SystemExit(f"could not download {name}=={version}")
    tmp = CORPORA / f".{name}-{version}.tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    if archive.suffix in (".zip", ".whl"):
        with zipfile.ZipFile(archive) as z:
            z.extractall(tmp)
    else:
        with tarfile.open(archive) as t:
            t.extractall(tmp)
    inner = [p for p in tmp.iterdir() if p.is_dir() and not p.name.endswith((".dist-info", ".data"))]
    single = len(inner) == 1 and archive.suffix != ".whl"  # a wheel's top folders are packages
    (inner[0] if single else tmp).rename(dest)
    if single:
        tmp.rmdir()
    return dest


def _downloaded(dl: Path, name: str, version: str):
    norm = name.replace("-", "_").lower()
    for p in sorted(dl.iterdir()):
        low = p.name.lower()
        if low.replace("-", "_").startswith(f"{norm}_{version}".lower()) or low.startswith(f"{name.lower()}-{version}"):
            return p
    return None


def lint(src: Path, select: str) -> list:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    # on a copy outside this repository: inside, the project index would take this repository
    # for the project (and skip the hidden .corpora/), so nothing would pair across files
    path = Path(tempfile.gettempdir()) / "ckptlint-eval-corpus" / src.name
    if not path.is_dir():
        shutil.copytree(src, path, symlinks=True)
    # files are named explicitly: a corpus's own ignore files are not ours to apply
    files = sorted(str(p) for p in path.rglob("*.py") if ".egg-info" not in str(p))
    proc = subprocess.run(
        [sys.executable, "-m", "ckptlint", "check", *files, "--select", select, "--no-cache",
         "--output-format", "json", "--exit-zero", "--config", str(HERE / "eval-config.toml")],
        capture_output=True, text=True, env=env, cwd=path,
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        raise SystemExit(f"ckptlint failed on {path}: {proc.stderr}")
    return json.loads(proc.stdout)


def context(d: dict, lines: int = 3) -> str:
    try:
        # bytes.splitlines: rows end where ckptlint counts them (not at a form feed or U+2028)
        text = [ln.decode("utf-8", "replace") for ln in Path(d["filename"]).read_bytes().splitlines()]
    except OSError:
        return ""
    row = d["location"]["row"]
    lo, hi = max(0, row - 1 - lines), min(len(text), row + lines)
    return "\n".join(f"{'>' if i + 1 == row else ' '}{i + 1:5d} {text[i]}" for i in range(lo, hi))


def all_codes() -> list:
    sys.path.insert(0, str(ROOT))
    from ckptlint.rules import all_rules

    return [c for c, r in all_rules().items() if r.phase == "static"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", choices=("semantic", "dist"), default="semantic",
                    help="dist: the distributed training code bases, with the distributed rules")
    ap.add_argument("--select", default=None)
    ap.add_argument("--show", default="", help="print these codes' findings with context")
    ap.add_argument("--only", default="", help="comma-separated package names")
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    show = set(filter(None, args.show.split(",")))
    packages = DISTRIBUTED if args.corpus == "dist" else PACKAGES
    select = args.select or (DIST_RULES if args.corpus == "dist" else SEMANTIC)
    codes = sorted(all_codes()) if select == "ALL" else select.split(",")
    table = {}
    for name, version in packages:
        if only and name not in only:
            continue
        src = fetch(name, version)
        found = lint(src, select)
        table[f"{name}=={version}"] = Counter(d["code"] for d in found)
        for d in found:
            if d["code"] in show:
                rel = d["filename"].split(f"/{src.name}/", 1)[-1]
                print(f"--- {name} {rel}:{d['location']['row']} {d['code']}: {d['message']}")
                print(context(d))
    width = max(len(k) for k in table) if table else 10
    print(f"\n{'package':<{width}}  " + "  ".join(c[-3:] for c in codes))
    for pkg, counts in table.items():
        print(f"{pkg:<{width}}  " + "  ".join(f"{counts.get(c, 0):>3}" for c in codes))
    total = Counter()
    for c in table.values():
        total.update(c)
    print(f"{'total':<{width}}  " + "  ".join(f"{total.get(c, 0):>3}" for c in codes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
