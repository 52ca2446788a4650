"""The pure one-file lint: text + settings + project index in, findings and fixes out
(engine.lint.lint). No file system writes and no module-level state; see docs/architecture.md."""
