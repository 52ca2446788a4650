"""The project-wide class index, seen the way users see it: findings of the CLI on a small
multi-file project, linted whole and file by file (as pre-commit does)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ckptlint.analysis.project import build_index, ProjectView, Tree
from tests.helpers import run_cli

PROJECT = Path(__file__).parent / "fixtures" / "project_index"


def findings(*paths, cwd=PROJECT):
    proc = run_cli(*paths, "--output-format", "json", cwd=cwd)
    assert "Traceback" not in proc.stderr, proc.stderr
    out = json.loads(proc.stdout)
    return sorted((Path(d["filename"]).relative_to(PROJECT.resolve()).as_posix(), d["location"]["row"], d["code"])
                  for d in out)


@pytest.fixture(scope="module")
def whole():
    return findings(".")


def view():
    return ProjectView(Tree(PROJECT.resolve()), None, "", "")


def test_class_defined_in_another_file_is_a_module(whole):
    assert ("train.py", 13, "CKPT001") in whole  # Encoder re-exported by pkg/__init__ via `import *`


def test_message_names_the_file_that_defines_the_class():
    out = json.loads(run_cli("train.py", "--output-format", "json", cwd=PROJECT).stdout)
    first = next(d for d in out if d["location"]["row"] == 15)
    assert "`big` is an nn.Module (a call of `Big`, an nn.Module subclass from pkg/nets.py, bound at line 14)" \
        in first["help"]


def test_subclass_chain_across_files(whole):
    assert ("train.py", 15, "CKPT001") in whole  # Big(Encoder)
    assert ("pkg/train_rel.py", 9, "CKPT001") in whole  # Bigger(Big(Encoder))
    assert ("pkg/train_rel.py", 11, "CKPT001") in whole  # Deepest in pkg/sub/, `from ..nets`


def test_star_import_base(whole):
    assert ("train.py", 17, "CKPT001") in whole  # StarNet(Block), Block from `from .layers import *`


def test_class_used_through_star_import(whole):
    assert ("train_star.py", 8, "CKPT001") in whole  # `from pkg.layers import *` then Block()


def test_module_inside_saved_dict(whole):
    assert ("train.py", 19, "CKPT001") in whole


def test_same_named_classes_are_told_apart(whole):
    assert ("train.py", 20, "CKPT001") in whole  # pkg.torchnet.Net is a module
    assert not [f for f in whole if f[0] == "train_plain.py"]  # pkg.plain.Net is not, even as `model`


def test_plain_class_is_not_a_module(whole):
    assert ("train.py", 22, "CKPT001") not in whole  # Config() saved


def test_save_load_pairing_across_files(whole):
    assert ("evaluate.py", 9, "CKPT010") in whole


def test_whole_project_result_exactly(whole):
    assert whole == [
        ("evaluate.py", 9, "CKPT010"),
        ("pkg/train_rel.py", 9, "CKPT001"),
        ("pkg/train_rel.py", 11, "CKPT001"),
        ("train.py", 13, "CKPT001"),
        ("train.py", 15, "CKPT001"),
        ("train.py", 17, "CKPT001"),
        ("train.py", 19, "CKPT001"),
        ("train.py", 20, "CKPT001"),
        ("train_star.py", 8, "CKPT001"),
    ]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["train.py", "evaluate.py", "train_plain.py", "pkg/train_rel.py", "train_star.py"])
def test_file_linted_alone_matches_whole_run(whole, name):
    alone = findings(name)
    assert alone == [f for f in whole if f[0] == name]


def test_file_linted_alone_from_another_directory(whole):
    alone = findings(str(PROJECT / "evaluate.py"), cwd=PROJECT.parent)
    assert alone == [("evaluate.py", 9, "CKPT010")]


def test_without_project_marker_siblings_still_resolve(tmp_path):
    """No pyproject.toml / .git: the files next to the linted one are indexed."""
    (tmp_path / "nets.py").write_text("import torch.nn as nn\n\nclass Net(nn.Module):\n    pass\n")
    (tmp_path / "run.py").write_text("import torch\nfrom nets import Net\n\nm = Net()\ntorch.save(m, 'm.pt')\n")
    proc = run_cli(tmp_path / "run.py", "--select", "CKPT001", "--output-format", "json", cwd=tmp_path)
    out = json.loads(proc.stdout)
    assert [(d["code"], d["location"]["row"]) for d in out] == [("CKPT001", 5)]
    assert "a call of `Net`" in out[0]["help"]


def test_index_is_plain_deterministic_data():
    a = build_index(PROJECT.resolve())
    b = build_index(PROJECT.resolve())
    assert json.loads(json.dumps(a)) == a  # serialisable as is
    assert json.dumps(a, sort_keys=False) == json.dumps(b, sort_keys=False)
    assert a["modules"]["pkg.nets"]["classes"] == {"Big": ["pkg.models.Encoder"], "Bigger": ["pkg.nets.Big"]}


def test_class_kinds():
    v = view()
    assert v.class_kind("pkg.sub.deep.Deepest") == "module"
    assert v.class_kind("pkg.Encoder") == "module"  # through the package's star import
    assert v.class_kind("pkg.star.Block") == "module"
    assert v.class_kind("pkg.models.Config") == "other"
    assert v.class_kind("pkg.plain.Net") == "other"
    assert v.class_kind("pkg.torchnet.Net") == "module"
    assert v.class_kind("pkg.nowhere.Thing") is None
    assert v.constant("pkg.paths.BEST") == "runs/best.pt"


def test_new_subclass_in_copied_project(tmp_path):
    """The index reads files as they are: a new project class is picked up."""
    dst = tmp_path / "proj"
    shutil.copytree(PROJECT, dst)
    (dst / "extra.py").write_text(
        "import torch\nfrom pkg.sub.deep import Deepest\n\n\nclass Deeper(Deepest):\n    pass\n\n\n"
        "thing = Deeper()\ntorch.save(thing, 'x.pt')\n"
    )
    proc = run_cli("extra.py", "--output-format", "json", cwd=dst)
    out = json.loads(proc.stdout)
    assert [(d["code"], d["location"]["row"]) for d in out] == [("CKPT001", 10)]


def test_index_not_built_when_no_rule_needs_it(monkeypatch):
    from ckptlint.analysis import project

    monkeypatch.setattr(project, "Tree", lambda *a: pytest.fail("project walked"))
    view = project.ProjectIndex().view(str(PROJECT / "train.py"), "import torch\nx = 1\n", None)
    assert view.current["classes"] == {}
    assert view.consulted == set()


def _reads(monkeypatch):
    """The project files summarised from disk, in order."""
    from ckptlint.analysis import project

    read = []
    real = project.summarise
    monkeypatch.setattr(project, "summarise", lambda text, module, pkg, path, tree=None, sites=True:
                        read.append(path) or real(text, module, pkg, path, tree, sites))
    return read


def test_only_the_files_a_name_is_followed_through_are_read(monkeypatch):
    from ckptlint.analysis import project

    read = _reads(monkeypatch)
    path = PROJECT / "train.py"
    view = project.ProjectIndex().view(str(path), path.read_text(), None)
    read.clear()  # the linted file's own summary
    assert view.class_kind("pkg.nets.Big") == "module"
    # Big(pkg.models.Encoder); Encoder(nn.Module): two files, not the 15 of the project
    assert read == ["pkg/nets.py", "pkg/models.py"]
    # and the view says so: the result depends on those modules (and on nothing else)
    key = f"{PROJECT.resolve()}|True"
    assert {k.split("\0")[2] for k in view.consulted if k.startswith("module\0" + key)} >= {"pkg.nets", "pkg.models"}
    assert not any(k.startswith("tree\0") for k in view.consulted)


def test_files_are_read_once_per_run(monkeypatch):
    from ckptlint.analysis import project

    walks = []
    real_tree = project.Tree
    monkeypatch.setattr(project, "Tree", lambda *a: walks.append(a) or real_tree(*a))
    read = _reads(monkeypatch)
    index = project.ProjectIndex()  # one per run, shared by its files
    for name in ("train.py", "evaluate.py", "pkg/train_rel.py"):
        path = PROJECT / name
        view = index.view(str(path), path.read_text(), None)
        assert view.class_kind("pkg.nets.Big") == "module"
    assert len(walks) == 1
    disk = [p for p in read if p not in ("train.py", "evaluate.py", "pkg/train_rel.py")]
    assert sorted(disk) == sorted(set(disk)) == ["pkg/models.py", "pkg/nets.py"]


@pytest.mark.slow
def test_unsafe_fix_rewrites_whole_model_saves_in_the_project(tmp_path):
    dst = tmp_path / "proj"
    shutil.copytree(PROJECT, dst)
    proc = run_cli("train.py", "--fix", cwd=dst)
    assert "torch.save(enc, " in (dst / "train.py").read_text()  # unsafe: not applied by --fix
    proc = run_cli("train.py", "--fix", "--unsafe-fixes", cwd=dst)
    text = (dst / "train.py").read_text()
    assert 'torch.save(enc.state_dict(), "enc.pt")' in text
    assert 'torch.save({"deep": deep.state_dict(), "step": 1}, "deep.pt")' in text
    assert 'torch.save(cfg, "cfg.pt")' in text  # a plain class is left alone
    again = run_cli("train.py", "--output-format", "json", cwd=dst)
    assert json.loads(again.stdout) == [], proc.stdout


@pytest.mark.slow
def test_model_names_setting_in_pyproject(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.ckptlint]\nselect = ["CKPT001"]\nmodel-names = false\n')
    (tmp_path / "save.py").write_text("import torch\n\ndef save(model, path):\n    torch.save(model, path)\n")
    out = json.loads(run_cli("save.py", "--output-format", "json", cwd=tmp_path).stdout)
    assert out == []
    (tmp_path / "pyproject.toml").write_text('[tool.ckptlint]\nselect = ["CKPT001"]\n')
    out = json.loads(run_cli("save.py", "--output-format", "json", cwd=tmp_path).stdout)
    assert [d["code"] for d in out] == ["CKPT001"]
    assert "by its name only" in out[0]["help"]


@pytest.mark.slow
@pytest.mark.parametrize("how", ["gitignore", "extend-exclude"])
def test_index_reads_the_files_a_run_lints(tmp_path, how):
    """A copy of the project's code that a run would not lint (an experiment tracker's
    snapshot, ignored by git or excluded in the config) does not make a name ambiguous."""
    (tmp_path / "lib").mkdir()
    (tmp_path / "src").mkdir()
    (tmp_path / "snapshots").mkdir()
    net = "import torch\nclass Net(torch.nn.Module):\n    pass\n"
    (tmp_path / "lib" / "models.py").write_text(net)
    (tmp_path / "snapshots" / "models.py").write_text(net)
    (tmp_path / "src" / "train.py").write_text("import torch\nfrom models import Net\nthing = Net()\ntorch.save(thing, 'n.pt')\n")
    if how == "gitignore":
        (tmp_path / ".git").mkdir()
        (tmp_path / ".gitignore").write_text("snapshots/\n")
        (tmp_path / "pyproject.toml").write_text("")
    else:
        (tmp_path / "pyproject.toml").write_text('[tool.ckptlint]\nextend-exclude = ["snapshots"]\n')
    out = json.loads(run_cli("src/train.py", "--output-format", "json", cwd=tmp_path).stdout)
    assert [(d["code"], d["location"]["row"]) for d in out] == [("CKPT001", 4)]
    assert "lib/models.py" in out[0]["help"]
    # the copy, linted too, would make `models` ambiguous: no evidence, no finding
    (tmp_path / ".gitignore").write_text("")
    (tmp_path / "pyproject.toml").write_text("")
    assert json.loads(run_cli("src/train.py", "--output-format", "json", "--no-cache", cwd=tmp_path).stdout) == []


# --- star imports bring names into scope the way Python does --------------------------------
STAR_PROJECT = {
    "pyproject.toml": "[project]\nname = 'p'\n",
    "pkg/__init__.py": "",
    "pkg/basics.py": "import torch\nimport torch.nn as nn\nfrom torch import load as tl\n_hidden = torch\n",
    "pkg/common.py": "from .basics import *\n",  # a chain: what basics exports, common exports
    "pkg/limited.py": "import torch\n__all__ = ['helper']\n\ndef helper():\n    pass\n",
    "pkg/shadow.py": "from .basics import *\n\ndef load(p):\n    return p\n",
    "pkg/train.py": "from .basics import *\n\nsd = torch.load('m.pt')\nx = tl('x.pt', map_location='cpu')\n",
    "pkg/chain.py": "from .common import *\n\nmodel = nn.Linear(2, 2)\ntorch.save(model, 'm.pt')\n",
    "pkg/listed.py": "from .limited import *\n\ntorch.load('m.pt')\n",  # `__all__` leaves torch out
    "pkg/private.py": "from .basics import *\n\n_hidden.load('m.pt')\n",  # no `_name` without `__all__`
    "pkg/local.py": "from .shadow import *\n\nload('m.pt')\n",  # shadow's own `load` wins
}


def _star_project(root: Path) -> None:
    for name, text in STAR_PROJECT.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def _codes(root: Path, *paths):
    out = json.loads(run_cli(*paths, "--output-format", "json", "--no-cache", cwd=root).stdout)
    return sorted((Path(d["filename"]).name, d["location"]["row"], d["code"]) for d in out)


def test_star_imports_bring_torch_and_friends_into_scope(tmp_path):
    _star_project(tmp_path)
    expected = [
        ("chain.py", 4, "CKPT001"),  # `nn` through two star imports: nn.Linear is a module
        ("train.py", 3, "CKPT002"), ("train.py", 3, "CKPT004"),
        ("train.py", 4, "CKPT002"),  # `tl` is torch.load
    ]
    assert _codes(tmp_path, "pkg") == expected
    # one file on its own (pre-commit) follows the same imports
    assert _codes(tmp_path, "pkg/chain.py") == expected[:1]


def test_star_import_results_follow_the_exporting_file(tmp_path):
    """A cached result of a file that star-imports a module is redone when that module changes."""
    import os
    import time

    _star_project(tmp_path)
    (tmp_path / "pkg" / "basics.py").write_text("import json\n")
    old = time.time() - 100
    for f in (tmp_path / "pkg").iterdir():
        os.utime(f, (old, old))

    def codes():
        out = json.loads(run_cli("pkg/train.py", "--output-format", "json", cwd=tmp_path).stdout)
        return [d["code"] for d in out]

    assert codes() == [] and codes() == []  # the second run from the cache
    (tmp_path / "pkg" / "basics.py").write_text(STAR_PROJECT["pkg/basics.py"])
    os.utime(tmp_path / "pkg" / "basics.py", (old + 10, old + 10))
    assert codes() == ["CKPT002", "CKPT004", "CKPT002"]


def test_whole_module_saves_through_annotated_attributes_of_project_classes(tmp_path):
    """`world.algorithm` where `algorithm: Policy` (a dataclass field, or an annotated class
    attribute) and Policy is an nn.Module of another file."""
    files = {
        "pyproject.toml": "[project]\nname = 'p'\n",
        "rl/__init__.py": "",
        "rl/nets.py": "import torch.nn as nn\n\nclass Policy(nn.Module):\n    pass\n",
        "rl/world.py": (
            "from dataclasses import dataclass\nfrom typing import Optional\n\nfrom .nets import Policy\n\n\n"
            "@dataclass\nclass World:\n    algorithm: Policy\n    critic: 'Optional[Policy]' = None\n    steps: int = 0\n"
        ),
        "rl/train.py": (
            "import torch\n\nfrom .world import World\n\n\n"
            "def save(world: World):\n    torch.save(world.algorithm, 'policy.pt')\n    torch.save(world.steps, 'steps.pt')\n\n\n"
            "class Runner:\n    def __init__(self, world: World):\n        self.world = world\n\n"
            "    def checkpoint(self):\n        torch.save(self.world.critic, 'critic.pt')\n"
        ),
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    out = json.loads(run_cli("rl/train.py", "--select", "CKPT001", "--output-format", "json", cwd=tmp_path).stdout)
    assert [(d["location"]["row"], d["message"]) for d in out] == [
        (7, "`torch.save` of a whole nn.Module: `world.algorithm`"),
        (16, "`torch.save` of a whole nn.Module: `self.world.critic`"),
    ]
    assert "(`World.algorithm`, annotated with an nn.Module class in rl/world.py" in out[0]["help"]
