"""`python -m ckptlint.runtime.cli verify ...`: the old path of `ckptlint verify`, kept as an
alias (the command lives in ckptlint.cli.verify)."""

import sys

from ckptlint.cli.verify import main, run  # noqa: F401 (re-exported)

if __name__ == "__main__":
    sys.exit(main())
