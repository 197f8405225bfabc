"""``python -m scenetalk``: the command line (what ``torchrun -m scenetalk train ...`` starts)."""

import sys

from scenetalk.cli import main

sys.exit(main())
