"""`--fix` and `--fix --unsafe-fixes` on copies of real PyTorch code bases, checked from outside.

    python benchmarks/fix_corpus.py [--only NAME] [--keep] [--diffs DIR]

For each pinned release (fetched once by eval_corpus.fetch into benchmarks/.corpora/, which
git ignores: the sdist, else the wheel), and for each mode (safe: `--fix`; unsafe: `--fix
--unsafe-fixes`), on a fresh copy of its source in a temporary folder:
  1. lint with JSON: the fixes ckptlint reports that the mode applies, and the lines they touch;
  2. `--fix` in that mode: the number of fixes it says it applied;
  3. every changed file still compiles (when the original did);
  4. the lines that changed (a `git diff`-style count from difflib) are lines the reported
     fixes touch, every reported fix changed a line, and the fixed count equals the reported fixes;
  5. a second JSON run shows no diagnostic with a fix for that mode, and a second `--fix`
     changes no byte.
Prints one row per code base and mode and exits 1 if any check fails. `--diffs DIR` writes
each run's unified diff to DIR/<corpus>-<mode>.diff, for reading every edit."""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from eval_corpus import fetch as _fetch  # noqa: E402  (one download and unpack for both scripts)

# Ten code bases that load and save checkpoints: four a new user tried (issue 13: espnet,
# monai, yolov5, mmengine, never used while developing the rules) and six eval_corpus pins.
CORPORA = [
    "espnet==202511",
    "monai==1.6.1",
    "yolov5==7.0.14",
    "mmengine==0.10.7",
    "timm==1.0.22",
    "accelerate==1.10.1",
    "ultralytics==8.3.0",
    "basicsr==1.4.2",
    "lightning==2.5.0",
    "salesforce-lavis==1.0.2",
]
MODES = {"safe": ("--fix",), "unsafe": ("--fix", "--unsafe-fixes")}


def fetch(spec: str) -> Path:
    name, version = spec.split("==")
    return _fetch(name, version)


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
    # bytes.splitlines: rows end at \n, \r\n, \r only, as ckptlint counts them (str.splitlines of
    # UTF-8 decoded as latin-1 also splits at byte 0x85, inside an emoji)
    a = old.splitlines(keepends=True)
    b = new.splitlines(keepends=True)
    rows, added, removed = set(), 0, 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        # a pure insertion adds lines after row i1 (a keyword on a line of its own)
        rows.update(range(i1 + 1, i2 + 1) if tag != "insert" else [max(i1, 1)])
        removed += i2 - i1
        added += j2 - j1
    return rows, added, removed


def compiles(data: bytes, name: str) -> bool:
    try:
        compile(data, name, "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    return True


def run_one(spec: str, mode: str, keep: bool, diffs) -> dict:
    src = fetch(spec)
    # outside this repository: its .gitignore (which lists .corpora/) would hide the copy
    work = Path(tempfile.gettempdir()) / "ckptlint-fix-corpus" / f"{src.name}-{mode}"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(src, work, symlinks=True)
    declare_python_floor(work)
    before = snapshot(work)
    problems = []
    flags = MODES[mode]
    unsafe = "--unsafe-fixes" in flags

    start = time.monotonic()
    reported = json.loads(ckptlint(".", *flags[1:], "--output-format", "json", "--no-cache", cwd=work).stdout)
    fixable = [d for d in reported if applies(d, unsafe)]
    fix_run = ckptlint(".", *flags, "--no-cache", cwd=work)
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
    patch = []
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
        name = str(path.relative_to(work))
        patch.extend(difflib.diff_bytes(
            difflib.unified_diff, before[path].splitlines(keepends=True), after[path].splitlines(keepends=True),
            f"a/{name}".encode(), f"b/{name}".encode()))
    for filename in expected:
        if Path(filename) not in after or after[Path(filename)] == before.get(Path(filename)):
            problems.append(f"{filename}: fixes reported but the file did not change")

    again = json.loads(ckptlint(".", *flags[1:], "--output-format", "json", "--no-cache", cwd=work).stdout)
    still = [d for d in again if applies(d, unsafe)]
    if still:
        problems.append(f"second run: {len(still)} diagnostics still carry a fix, e.g. {still[0]}")
    ckptlint(".", *flags, "--no-cache", cwd=work)
    if digest(snapshot(work)) != digest(after):
        problems.append("second --fix changed files")
    if diffs is not None:
        Path(diffs).mkdir(parents=True, exist_ok=True)
        (Path(diffs) / f"{src.name}-{mode}.diff").write_bytes(b"".join(patch))
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "corpus": spec, "mode": mode, "py_files": len(before), "diagnostics": len(reported), "fixes": len(fixable),
        "fixed": fixed, "files_changed": len(changed_files), "added": added, "removed": removed,
        "left_after": len(again), "still_fixable": len(still), "seconds": seconds, "problems": problems,
        "by_rule": sorted({d["code"] for d in fixable}),
    }


def declare_python_floor(work: Path) -> None:
    """A corpus unpacked from a wheel has no pyproject.toml or setup.py; its METADATA keeps
    the `Requires-Python` the project's repository declares. Write it where ckptlint (and
    ruff) read it, so fixes are written for the project's real oldest Python."""
    if any((work / n).exists() for n in ("pyproject.toml", "setup.py", "setup.cfg")):
        return
    for meta in work.glob("*.dist-info/METADATA"):
        m = re.search(r"^Requires-Python:\s*(.+)$", meta.read_text(encoding="utf-8", errors="replace"), re.M)
        if m:
            (work / "pyproject.toml").write_text(f'[project]\nname = "corpus"\nrequires-python = "{m.group(1).strip()}"\n')
            return


def applies(d: dict, unsafe: bool) -> bool:
    return d["fix"] is not None and (unsafe or d["fix"]["applicability"] == "safe")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", help="a corpus name, e.g. timm")
    parser.add_argument("--mode", choices=sorted(MODES), action="append", help="safe or unsafe (default: both)")
    parser.add_argument("--keep", action="store_true", help="keep the fixed copies (under $TMPDIR/ckptlint-fix-corpus)")
    parser.add_argument("--diffs", metavar="DIR", help="write each run's unified diff here")
    args = parser.parse_args()
    specs = [s for s in CORPORA if not args.only or s.split("==")[0] in args.only]
    header = ("corpus", "mode", ".py files", "diagnostics", "fixes applied", "fixed", "files changed",
              "lines +/-", "left after", "2nd run fixable", "seconds", "checks")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    failed = False
    for mode in args.mode or sorted(MODES):
        totals = dict.fromkeys(("py_files", "diagnostics", "fixes", "fixed", "files_changed", "added", "removed",
                                "left_after", "still_fixable"), 0)
        for spec in specs:
            r = run_one(spec, mode, args.keep, args.diffs)
            for k in totals:
                totals[k] += r[k]
            ok = "ok" if not r["problems"] else "FAIL"
            failed |= bool(r["problems"])
            print(f"| {spec} | {mode} | {r['py_files']} | {r['diagnostics']} | {r['fixes']} | {r['fixed']} | "
                  f"{r['files_changed']} | +{r['added']}/-{r['removed']} | {r['left_after']} | {r['still_fixable']} | "
                  f"{r['seconds']:.1f} | {ok} |", flush=True)
            for p in r["problems"]:
                print(f"  - {p}", file=sys.stderr)
        t = totals
        print(f"| total | {mode} | {t['py_files']} | {t['diagnostics']} | {t['fixes']} | {t['fixed']} | "
              f"{t['files_changed']} | +{t['added']}/-{t['removed']} | {t['left_after']} | {t['still_fixable']} | | "
              f"{'FAIL' if failed else 'ok'} |", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
