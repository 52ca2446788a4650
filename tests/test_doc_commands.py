"""Every command block of README.md and docs/*.md runs as written, in a temporary folder,
without the network; every transcript (a ```text block of `$ ` lines and their output) is
what ckptlint prints there.

How a block runs, by what it holds:
- `pip install` (from a clone): in a copy of the working tree. Each virtual environment the
  block makes (`python3 -m venv NAME`) is made first by the test with a `.pth` file that puts
  this test environment's site-packages first on its path, and pip runs with
  PIP_NO_INDEX=1 and PIP_NO_BUILD_ISOLATION=0: every requirement is then already there, and
  `python3 -m venv` on the existing folder keeps it. A block that makes none installs into a
  fresh `.venv`, activated. PYTEST_ADDOPTS=--collect-only makes README's test command
  collect the suite rather than run it inside itself (.ci/run runs that line for real).
- `ckptlint verify`: in a folder with checkpoints (weights/model.pt, other.safetensors, runs/,
  a pyproject.toml declaring one).
- other commands: in a project made of the bundled examples (src/ and train.py).
Each line is one command: exit 0, or 1 where ckptlint reports findings (the documented
status); a comment ending in `("text")` names output the command prints.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from tests.helpers import HANG, ROOT, cli_env, copy_working_tree

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^( *)```([\w-]*)\n(.*?)^\1```", re.M | re.S)
SHELL = ("sh", "bash", "console")


def _blocks():
    for doc in DOCS:
        for m in FENCE.finditer(doc.read_text(encoding="utf-8")):
            yield doc, m.group(2), textwrap.dedent(m.group(3))


def _commands(lang: str, block: str) -> list:
    lines, out = block.splitlines(), []
    for line in lines:
        if lang == "console":
            assert line.startswith("$ "), f"a console block holds only commands: {line!r}"
            line = line[2:]
        if line.strip() and not line.lstrip().startswith("#"):
            out.append(line)
    return out


SHELL_BLOCKS = [pytest.param(doc, lang, block, id=f"{doc.name}-{i}")
                for i, (doc, lang, block) in enumerate(_blocks()) if lang in SHELL]
TRANSCRIPTS = [pytest.param(doc, block, id=f"{doc.name}-{block.splitlines()[0][2:]}")
               for doc, lang, block in _blocks() if lang == "text" and block.startswith("$ ")]


def test_every_block_says_what_it_holds():
    """An unmarked block is neither run nor checked: each says sh, text, toml, ..."""
    bare = [(doc.name, block.splitlines()[0]) for doc, lang, block in _blocks() if not lang]
    assert not bare, bare


def test_there_are_blocks_to_run():
    names = {p.values[0].name for p in SHELL_BLOCKS}
    assert {"README.md", "guide.md", "editors.md", "runtime.md", "integrations.md"} <= names
    assert len(TRANSCRIPTS) >= 3


def test_pip_installs_are_from_a_clone_or_a_commit_of_the_repository():
    """ckptlint is not on PyPI: `pip install ckptlint` would fail (or install someone else's).
    Installs name a clone (`.`) or a commit of the repository; tests/test_doc_refs.py checks
    that the commit exists."""
    from tests.doc_refs import COMMIT, HOME_REPO

    for doc in DOCS:
        for spec in re.findall(r"pip install ([^`\n&;#]*)", doc.read_text(encoding="utf-8")):
            if "ckptlint" in spec:
                ref = spec.split(f"git+{HOME_REPO}@")[-1].rstrip("\"' ")
                assert COMMIT.fullmatch(ref), (doc.name, spec)


# --- the folders the blocks run in ---------------------------------------------------------

def _test_site() -> str:
    return sysconfig.get_paths()["purelib"]


def _prepared_venv(path: Path) -> None:
    """A venv of this interpreter that sees this environment's packages first."""
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, capture_output=True)
    site = Path(sysconfig.get_paths(vars={"base": str(path), "platbase": str(path)})["purelib"])
    (site / "zz_test_env.pth").write_text(f"import sys; sys.path.insert(0, {_test_site()!r})\n")


def _clone_scene(tmp: Path, block: str) -> dict:
    if not shutil.which("git"):
        pytest.skip("git is not installed: no clone to copy")
    copy_working_tree(tmp)
    base = Path(getattr(sys, "_base_executable", sys.executable)).parent  # `python3` is this Python
    path = [str(base), "/usr/bin", "/bin"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "PIP_"))}
    env.update(PIP_NO_INDEX="1", PIP_NO_BUILD_ISOLATION="0", PIP_DISABLE_PIP_VERSION_CHECK="1",
               PYTEST_ADDOPTS="--collect-only -p no:cacheprovider")
    made = re.findall(r"python3 -m venv (\S+)", block)
    for name in made:
        _prepared_venv(tmp / name)
    if not made:  # installs into the environment one works in
        _prepared_venv(tmp / ".venv")
        env["VIRTUAL_ENV"] = str(tmp / ".venv")
        path.insert(0, str(tmp / ".venv" / "bin"))
    env["PATH"] = os.pathsep.join(path)
    return env


def _shim_env(tmp: Path) -> dict:
    """`ckptlint` on PATH runs this working tree's code with this Python."""
    bin_dir = tmp.parent / f"{tmp.name}-bin"
    bin_dir.mkdir()
    shim = bin_dir / "ckptlint"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m ckptlint "$@"\n')
    shim.chmod(0o755)
    env = cli_env()
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env


def _project_scene(tmp: Path) -> dict:
    shutil.copytree(ROOT / "examples", tmp / "src")
    shutil.copy2(ROOT / "examples" / "train.py", tmp / "train.py")
    return _shim_env(tmp)


def _checkpoint_scene(tmp: Path) -> dict:
    from safetensors.numpy import save_file
    import numpy as np

    from tests.runtime.handmade import save_zip, small_state

    (tmp / "weights").mkdir()
    save_zip(small_state(), tmp / "weights" / "model.pt")
    save_file({"w": np.zeros((2, 2), dtype=np.float32)}, str(tmp / "other.safetensors"))
    (tmp / "runs" / "a").mkdir(parents=True)
    save_zip(small_state(), tmp / "runs" / "a" / "last.ckpt")
    (tmp / "pyproject.toml").write_text('[[tool.ckptlint.checkpoints]]\npath = "weights/model.pt"\n')
    return _shim_env(tmp)


def _scene(tmp: Path, block: str) -> dict:
    if "pip install" in block:
        return _clone_scene(tmp, block)
    if "ckptlint verify" in block:
        return _checkpoint_scene(tmp)
    return _project_scene(tmp)


@pytest.mark.slow
@pytest.mark.parametrize("doc,lang,block", SHELL_BLOCKS)
def test_shell_block_runs_as_written(doc, lang, block, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    env = _scene(work, block)
    for command in _commands(lang, block):
        proc = subprocess.run(["bash", "-c", command], cwd=work, env=env, capture_output=True, text=True,
                              timeout=HANG)
        out = proc.stdout + proc.stderr
        last = command.split("&&")[-1].strip()
        allowed = {0, 1} if re.match(r"ckptlint (?!rule\b|server\b)", last) else {0}  # 1: findings
        assert proc.returncode in allowed, f"{doc.name}: `{command}` exited {proc.returncode}:\n{out[-3000:]}"
        assert "Traceback" not in out, out[-3000:]
        shown = re.search(r'\("([^"]+)"\)\s*$', command)
        if shown:
            assert shown.group(1) in out, (command, out[-2000:])
        if "pip install ." in command and "ckptlint check" in command:
            # the wheel ships the docs its findings link to
            site = sysconfig.get_paths(vars={"base": str(work / ".venv"), "platbase": str(work / ".venv")})["purelib"]
            assert (Path(site) / "ckptlint/docs/rules/CKPT002.md").is_file()


# --- transcripts ---------------------------------------------------------------------------

def _notebook(tmp: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import torch"), nbformat.v4.new_markdown_cell("# Load"),
                nbformat.v4.new_code_cell("path = 'model.pt'\nsd = torch.load(path, map_location='cpu')")]
    nbformat.write(nb, str(tmp / "analysis.ipynb"))


def _dcp_two_ranks(tmp: Path, tmp_path_factory) -> None:
    pytest.importorskip("torch")
    from tests.runtime.corpus.run import once_per_session
    from tests.runtime.test_dcp import _save_two_ranks

    made = once_per_session(tmp_path_factory, "dcp-two-ranks", _save_two_ranks)
    if made["path"] is None:
        pytest.skip(f"a two-process gloo run is not possible here: {made['errors'][-1]}")
    folder = tmp / "ckpt" / "step-100"
    shutil.copytree(made["path"], folder)
    shard = folder / "__1_0.distcp"
    shard.write_bytes(shard.read_bytes()[:19116])


def _deepspeed(tmp: Path, tmp_path_factory) -> None:
    torch = pytest.importorskip("torch")
    tag = tmp / "runs" / "ds" / "global_step10"
    tag.mkdir(parents=True)
    (tag.parent / "latest").write_text("global_step10")
    torch.save({"module": torch.nn.Linear(2, 2).state_dict(), "ds_version": "0.15.0"},
               tag / "mp_rank_00_model_states.pt")
    for rank in (0, 1, 3):  # rank 2 of 4 left out
        torch.save({"optimizer_state_dict": {"zero_stage": 2, "partition_count": [4],
                                             "single_partition_of_fp32_groups": [torch.zeros(2)]}},
                   tag / f"zero_pp_rank_{rank}_mp_rank_00_optim_states.pt")


# the first command of a transcript -> what makes its folder
TRANSCRIPT_SCENES = {
    "ckptlint check analysis.ipynb": lambda tmp, factory: _notebook(tmp),
    "ckptlint verify ckpt/step-100": _dcp_two_ranks,
    "ckptlint verify runs/ds": _deepspeed,
    "ckptlint check --show-files": lambda tmp, factory: [
        (tmp / "pkg").mkdir(), (tmp / "pkg" / "train.py").write_text("import torch\n"),
        (tmp / ".venv").mkdir(), (tmp / ".venv" / "pyvenv.cfg").write_text("home = /usr\n"),
        (tmp / "node_modules").mkdir()],
    "ckptlint check --output-format full -q --select CKPT002 train.py":
        lambda tmp, factory: (tmp / "train.py").write_text("import torch\n\nsd = torch.load('m.pt')\n"),
}


def _expected(block: str) -> list:
    """[(command, [output line patterns])]; `...` in a line stands for any text."""
    steps = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif line.strip():
            steps[-1][1].append(re.compile(".*".join(map(re.escape, line.split("...")))))
    return steps


@pytest.mark.slow
@pytest.mark.parametrize("doc,block", TRANSCRIPTS)
def test_transcript_is_what_ckptlint_prints(doc, block, tmp_path, tmp_path_factory):
    steps = _expected(block)
    scene = TRANSCRIPT_SCENES.get(steps[0][0])
    assert scene, f"{doc.name}: no scene for the transcript `{steps[0][0]}`; add one here"
    scene(tmp_path, tmp_path_factory)
    env = _shim_env(tmp_path)
    for command, patterns in steps:
        proc = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=HANG)
        lines = proc.stdout.splitlines()
        if "..." not in block:  # a whole transcript: every line of stdout
            assert len(lines) == len(patterns), (command, proc.stdout, proc.stderr)
        for pattern, line in zip(patterns, lines):
            assert pattern.fullmatch(line), (command, pattern.pattern, line)
