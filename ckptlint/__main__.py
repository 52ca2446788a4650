import sys

from ckptlint.cli.main import main

sys.exit(main())
