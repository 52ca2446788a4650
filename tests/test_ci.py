from tests.helpers import ROOT
import re


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = re.findall(r"```sh\n(.*?)\n```", readme, re.S)[1].strip()
    assert command in (ROOT / ".ci/run").read_text(encoding="utf-8")
