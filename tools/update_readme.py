"""Refresh the example output shown in README.md (tests/test_docs.py fails when it is stale)."""

import os
import re
import subprocess
import sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent
env = {**os.environ, "PYTHONPATH": str(root)}
out = subprocess.run(
    [sys.executable, "-m", "ckptlint", "check", "examples"], cwd=root, env=env, capture_output=True, text=True
).stdout
readme = root / "README.md"
text = readme.read_text(encoding="utf-8")
text = re.sub(
    r"(<!-- example-output -->\n```text\n).*?(```)", lambda m: m.group(1) + out + m.group(2), text, flags=re.S
)
readme.write_text(text, encoding="utf-8")
