import sys

from ckptlint.cli import main

sys.exit(main())
