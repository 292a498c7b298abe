"""``python -m streamrec.infra.cli``: how the demo starts each stage as its own process."""

import sys

from streamrec.infra.cli.main import main

sys.exit(main())
