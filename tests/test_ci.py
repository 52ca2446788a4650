import re

from tests.helpers import ROOT


def _readme_test_command() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```sh\n(.*?)\n```", readme, re.S)[1].strip()


def test_ci_runs_the_readme_test_command():
    """.ci/run ends with the README's test command, character for character; what comes
    before it only installs editors and runs the VS Code extension's own unit tests (the
    README's command works without them: the editor tests then skip, saying why)."""
    command = _readme_test_command()
    lines = (ROOT / ".ci/run").read_text(encoding="utf-8").splitlines()
    commands = [line for line in lines if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert commands[-1] == command
    assert command not in commands[:-1]
    for setup in commands[:-1]:
        assert "apt-get install" in setup or setup.startswith("(cd editors/vscode && "), setup


def test_the_test_command_makes_its_own_ignored_venv():
    command = _readme_test_command()
    assert command.startswith("python3 -m venv .venv-test && . .venv-test/bin/activate && ")
    assert ".venv-test/" in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
