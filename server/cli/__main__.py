"""``python -m server.cli``: the ``blanco`` command."""

import sys

from server.cli.main import main

sys.exit(main())
