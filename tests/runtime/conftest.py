from __future__ import annotations

import sys

import pytest

from ._util import REPO

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


@pytest.fixture
def torch():
    return pytest.importorskip("torch")
