"""The checkpoint reader: what a checkpoint file holds and what its pickles would do on load,
read by content and never executed (no torch). The lowest layer after the base modules:
`ckptlint verify` (ckptlint/verify/) and the static rules that open a checkpoint file
(rules/_checkpoint_file.py) both read through it."""
