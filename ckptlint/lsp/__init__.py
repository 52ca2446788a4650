"""The language server (`ckptlint server`, extra `lsp`). Only `server` imports pygls, so the
rest of ckptlint never needs it."""
