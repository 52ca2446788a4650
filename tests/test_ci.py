import re

from tests.helpers import ROOT


def _readme_test_command() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```sh\n(.*?)\n```", readme, re.S)[1].strip()


def test_ci_runs_the_readme_test_command():
    """.ci/run's one command line is the README's, character for character."""
    command = _readme_test_command()
    lines = (ROOT / ".ci/run").read_text(encoding="utf-8").splitlines()
    commands = [line for line in lines if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert commands == [command]


def test_the_test_command_makes_its_own_ignored_venv():
    command = _readme_test_command()
    assert command.startswith("python3 -m venv .venv-test && . .venv-test/bin/activate && ")
    assert ".venv-test/" in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
