"""``python -m bdl_src``: see ``bdl_src.cli``."""

from bdl_src.cli import main

raise SystemExit(main())
