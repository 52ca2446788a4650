"""`--fix --unsafe-fixes` on copies of real PyTorch code bases, checked from outside.

    python benchmarks/fix_corpus.py [--only NAME] [--keep]

For each pinned sdist (downloaded once with `pip download` into benchmarks/.corpora/,
which git ignores), on a fresh copy of its source in a temporary folder:
  1. lint with JSON (`--unsafe-fixes`): the fixes ckptlint reports, and the lines they touch;
  2. `--fix --unsafe-fixes`: the number of fixes it says it applied;
  3. every changed file still compiles (when the original did);
  4. the lines that changed (a `git diff`-style count from difflib) are lines the reported
     fixes touch, every reported fix changed a line, and the fixed count equals the reported fixes;
  5. a second JSON run shows no diagnostic with a fix, and a second `--fix` changes no byte.
Prints one row per code base and exits 1 if any check fails."""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STORE = ROOT / "benchmarks" / ".corpora"

# Pinned sdists of PyTorch code bases that load and save checkpoints.
CORPORA = [
    "timm==0.9.16",
    "accelerate==0.27.2",
    "peft==0.10.0",
    "skorch==0.15.0",
    "pytorch-ignite==0.4.13",
    "speechbrain==0.5.16",
]


def fetch(spec: str) -> Path:
    """The unpacked pristine source of one sdist (downloaded and unpacked once)."""
    name, version = spec.split("==")
    src = STORE / "src" / f"{name}-{version}"
    if src.is_dir():
        return src
    sdists = STORE / "sdists"
    sdists.mkdir(parents=True, exist_ok=True)
    found = [p for p in sdists.iterdir() if _is_sdist_of(p.name, name, version)]
    if not found:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
             "-q", spec, "-d", str(sdists)],
            check=True,
        )
        found = [p for p in sdists.iterdir() if _is_sdist_of(p.name, name, version)]
    tmp = src.with_suffix(".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    with tarfile.open(found[0]) as tar:
        tar.extractall(tmp)
    tmp.rename(src)
    return src


def _is_sdist_of(filename: str, name: str, version: str) -> bool:
    norm = re.sub(r"[-_.]+", "-", filename.lower())
    return norm.startswith(re.sub(r"[-_.]+", "-", f"{name}-{version}".lower())) and filename.endswith(".tar.gz")


def ckptlint(*args, cwd: Path):
    proc = subprocess.run(
        [sys.executable, "-m", "ckptlint", *args], cwd=cwd, capture_output=True, text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    if proc.returncode not in (0, 1) or "Traceback" in proc.stderr:
        raise RuntimeError(f"ckptlint {' '.join(args)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return proc


def snapshot(root: Path) -> dict:
    return {p: p.read_bytes() for p in sorted(root.rglob("*.py")) if p.is_file() and not p.is_symlink()}


def digest(files: dict) -> str:
    h = hashlib.sha256()
    for path, data in files.items():
        h.update(str(path).encode() + b"\0" + data)
    return h.hexdigest()


def touched_rows(diagnostics) -> dict:
    """filename -> [original rows each reported fix edits]."""
    rows: dict = {}
    for d in diagnostics:
        if d["fix"] is None:
            continue
        mine = set()
        for e in d["fix"]["edits"]:
            mine.update(range(e["location"]["row"], e["end_location"]["row"] + 1))
        rows.setdefault(d["filename"], []).append(mine)
    return rows


def changed_rows(old: bytes, new: bytes):
    """(original rows that changed, lines added, lines removed), like `git diff --stat`."""
    a = old.decode("latin-1").splitlines(keepends=True)  # byte-exact, any encoding
    b = new.decode("latin-1").splitlines(keepends=True)
    rows, added, removed = set(), 0, 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag != "equal":
            rows.update(range(i1 + 1, i2 + 1))
            removed += i2 - i1
            added += j2 - j1
    return rows, added, removed


def compiles(data: bytes, name: str) -> bool:
    try:
        compile(data, name, "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    return True


def run_one(spec: str, keep: bool) -> dict:
    src = fetch(spec)
    # outside this repository: its .gitignore (which lists .corpora/) would hide the copy
    work = Path(tempfile.gettempdir()) / "ckptlint-fix-corpus" / src.name
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(src, work, symlinks=True)
    before = snapshot(work)
    problems = []

    start = time.monotonic()
    reported = json.loads(ckptlint(".", "--unsafe-fixes", "--output-format", "json", cwd=work).stdout)
    fixable = [d for d in reported if d["fix"] is not None]
    fix_run = ckptlint(".", "--fix", "--unsafe-fixes", cwd=work)
    seconds = time.monotonic() - start
    m = re.search(r"\((\d+) fixed, (\d+) remaining\)", fix_run.stdout)
    fixed = int(m.group(1)) if m else 0
    if fixed != len(fixable):
        problems.append(f"--fix says {fixed} fixed, JSON reported {len(fixable)} fixes")
    refused = [ln for ln in fix_run.stdout.splitlines() if " E997 " in ln]
    problems.extend(f"refused: {ln}" for ln in refused)

    after = snapshot(work)
    expected = touched_rows(fixable)
    changed_files = [p for p in before if after.get(p) != before[p]]
    added = removed = 0
    for path in changed_files:
        rows, a, r = changed_rows(before[path], after[path])
        added, removed = added + a, removed + r
        fixes = expected.get(str(path.resolve()), [])
        want = set().union(*fixes)
        # every changed line is one a fix edits, and every fix changed a line (a removal that
        # joins lines may leave its first line's text as it was, so not equality of sets)
        if not rows <= want or not all(f & rows for f in fixes):
            problems.append(f"{path.relative_to(work)}: lines changed {sorted(rows)[:10]} vs fixed {sorted(want)[:10]}")
        if compiles(before[path], str(path)) and not compiles(after[path], str(path)):
            problems.append(f"{path.relative_to(work)}: no longer compiles")
    for filename in expected:
        if Path(filename) not in after or after[Path(filename)] == before.get(Path(filename)):
            problems.append(f"{filename}: fixes reported but the file did not change")

    again = json.loads(ckptlint(".", "--unsafe-fixes", "--output-format", "json", cwd=work).stdout)
    still = [d for d in again if d["fix"] is not None]
    if still:
        problems.append(f"second run: {len(still)} diagnostics still carry a fix, e.g. {still[0]}")
    ckptlint(".", "--fix", "--unsafe-fixes", cwd=work)
    if digest(snapshot(work)) != digest(after):
        problems.append("second --fix changed files")
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "corpus": spec, "py_files": len(before), "diagnostics": len(reported), "fixes": len(fixable),
        "fixed": fixed, "files_changed": len(changed_files), "added": added, "removed": removed,
        "left_after": len(again), "still_fixable": len(still), "seconds": seconds, "problems": problems,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", help="a corpus name, e.g. timm")
    parser.add_argument("--keep", action="store_true", help="keep the fixed copies (under $TMPDIR/ckptlint-fix-corpus)")
    args = parser.parse_args()
    specs = [s for s in CORPORA if not args.only or s.split("==")[0] in args.only]
    header = ("corpus", ".py files", "diagnostics", "fixes reported", "fixed", "files changed",
              "lines +/-", "left after", "2nd run fixable", "seconds", "checks")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    failed = False
    totals = dict.fromkeys(("py_files", "diagnostics", "fixes", "fixed", "files_changed", "added", "removed",
                            "left_after", "still_fixable"), 0)
    for spec in specs:
        r = run_one(spec, args.keep)
        for k in totals:
            totals[k] += r[k]
        ok = "ok" if not r["problems"] else "FAIL"
        failed |= bool(r["problems"])
        print(f"| {spec} | {r['py_files']} | {r['diagnostics']} | {r['fixes']} | {r['fixed']} | "
              f"{r['files_changed']} | +{r['added']}/-{r['removed']} | {r['left_after']} | {r['still_fixable']} | "
              f"{r['seconds']:.1f} | {ok} |", flush=True)
        for p in r["problems"]:
            print(f"  - {p}", file=sys.stderr)
    t = totals
    print(f"| total | {t['py_files']} | {t['diagnostics']} | {t['fixes']} | {t['fixed']} | "
          f"{t['files_changed']} | +{t['added']}/-{t['removed']} | {t['left_after']} | {t['still_fixable']} | | "
          f"{'FAIL' if failed else 'ok'} |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
