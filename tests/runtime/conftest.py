from __future__ import annotations

import sys

import pytest

from ._util import REPO

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


@pytest.fixture(autouse=True)
def headlines_fit(monkeypatch):
    """Every runtime finding a test makes: its message is a headline of at most 100 characters
    as the check composed it (Rule.finding would cut a longer one, but nothing may rely on that)."""
    from ckptlint.diagnostic import HEADLINE
    from ckptlint.rules._base import Rule

    made = Rule.finding.__func__

    def finding(cls, message, *args, **kwargs):
        assert len(message) <= HEADLINE, f"{cls.code}: a {len(message)}-character headline: {message}"
        return made(cls, message, *args, **kwargs)

    monkeypatch.setattr(Rule, "finding", classmethod(finding))


@pytest.fixture
def torch():
    return pytest.importorskip("torch")
