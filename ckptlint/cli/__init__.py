"""The command fronts: they parse arguments, build a Workspace, call the engine or the
runtime phase, and render the result with ckptlint.output. `ckptlint` is cli.main.main."""
