"""`ckptlint server --select/--ignore`: the editor extension's rule settings reach the lint."""

from __future__ import annotations

import sys

import pytest

if sys.version_info < (3, 10):
    pytest.skip("the language server needs Python 3.10+", allow_module_level=True)

pytest_lsp = pytest.importorskip("pytest_lsp")
pytest.importorskip("pygls")

from lsprotocol import types  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities  # noqa: E402

from tests.helpers import cli_env  # noqa: E402
from tests.test_lsp import _diagnostics, _open  # noqa: E402

pytestmark = pytest.mark.slow


@pytest_lsp.fixture(config=ClientServerConfig(
    server_command=[sys.executable, "-m", "ckptlint", "server", "--ignore", "CKPT002"],
    server_env=cli_env(CKPTLINT_LSP_DEBOUNCE="0.05")))
async def client(lsp_client: LanguageClient, tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.ckptlint]\n")
    lsp_client.root = tmp_path

    @lsp_client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def register(params: types.RegistrationParams):  # the server asks to watch pyproject.toml
        pass

    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"), root_uri=tmp_path.as_uri()))
    yield
    await lsp_client.shutdown_session()


@pytest.mark.asyncio
async def test_the_command_line_selection_applies_to_every_document(client: LanguageClient):
    uri = _open(client, "train.py", "import torch\nsd = torch.load('m.pt')\n")
    assert [d.code for d in await _diagnostics(client, uri)] == ["CKPT004"]
