"""Record every finding with its fix on the eval corpora, and compare two recordings.

For refactors that must not change behaviour: record before, record after, compare. Every
static rule is selected (`--select ALL`); each package is linted as eval_corpus.py does it.
Paths are stored relative to the package, so recordings from different worktrees compare.

    python benchmarks/compare_findings.py record before.json [--corpus semantic,dist]
    python benchmarks/compare_findings.py record-verify before-verify.json --files DIR
    python benchmarks/compare_findings.py diff before.json after.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import eval_corpus  # noqa: E402


def _relative(findings: list, base: str) -> list:
    out = []
    for d in findings:
        d = dict(d)
        d["filename"] = os.path.relpath(d["filename"], base)
        out.append(d)
    return out


def record(corpora: list) -> dict:
    out = {}
    for corpus in corpora:
        packages = eval_corpus.DISTRIBUTED if corpus == "dist" else eval_corpus.PACKAGES
        for name, version in packages:
            key = f"{name}=={version}"
            if key in out:
                continue  # in both corpora: linted the same way
            src = eval_corpus.fetch(name, version)
            found = eval_corpus.lint(src, "ALL")
            copy = Path(eval_corpus.tempfile.gettempdir()) / "ckptlint-eval-corpus" / src.name
            out[key] = _relative(found, str(copy))
            print(f"{key}: {len(found)} findings", file=sys.stderr)
    return out


def record_verify(folder: Path) -> dict:
    """`ckptlint verify --output-format json` on the folders under `folder` (checkpoints found
    by content) and on every file below them named one by one."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = {}
    folders = sorted(str(p) for p in folder.iterdir())
    files = sorted(str(p) for p in folder.rglob("*") if p.is_file())
    for name, targets in (("verify-folders", folders), ("verify-files", files)):
        proc = subprocess.run([sys.executable, "-m", "ckptlint", "verify", *targets, "--output-format", "json",
                               "--exit-zero"], capture_output=True, text=True, env=env, cwd=folder)
        if not proc.stdout.strip():
            raise SystemExit(f"verify failed: {proc.stderr}")
        out[name] = _relative(json.loads(proc.stdout), str(folder))
    return out


def _portable(d: dict) -> dict:
    """The finding without a docs link into an installed ckptlint: a file: URI names the
    checkout that made it, not a behaviour (recordings older than 0.2.0's last ones have one;
    JSON now has none without a web home)."""
    if (d.get("url") or "").startswith("file://"):
        return dict(d, url=None)
    return d


def _key(d: dict) -> tuple:
    loc = d.get("location") or {}
    return (d["filename"], loc.get("row"), loc.get("column"), d["code"], d["message"])


def diff(a: dict, b: dict) -> int:
    """Prints what differs; 0 when both recordings hold the same findings and fixes."""
    problems = 0
    for pkg in sorted(set(a) | set(b)):
        if pkg not in a or pkg not in b:
            print(f"{pkg}: only in {'the first' if pkg in a else 'the second'} recording")
            problems += 1
            continue
        left = Counter(json.dumps(_portable(d), sort_keys=True) for d in a[pkg])
        right = Counter(json.dumps(_portable(d), sort_keys=True) for d in b[pkg])
        for d in sorted((left - right).elements()):
            print(f"{pkg}: - {_key(json.loads(d))}")
            problems += 1
        for d in sorted((right - left).elements()):
            print(f"{pkg}: + {_key(json.loads(d))}")
            problems += 1
    total = sum(len(v) for v in a.values())
    fixes = sum(1 for v in a.values() for d in v if d.get("fix"))
    print(f"{len(a)} packages, {total} findings ({fixes} with fixes): "
          + ("identical" if not problems else f"{problems} differences"))
    return 1 if problems else 0


def main() -> int:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("out")
    rec.add_argument("--corpus", default="semantic,dist")
    ver = sub.add_parser("record-verify")
    ver.add_argument("out")
    ver.add_argument("--files", required=True, help="a folder of checkpoint files and folders")
    cmp_ = sub.add_parser("diff")
    cmp_.add_argument("a")
    cmp_.add_argument("b")
    args = ap.parse_args()
    if args.command == "diff":
        return diff(json.loads(Path(args.a).read_text()), json.loads(Path(args.b).read_text()))
    data = record(args.corpus.split(",")) if args.command == "record" else record_verify(Path(args.files))
    Path(args.out).write_text(json.dumps(data, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
