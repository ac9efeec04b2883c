"""``python -m lgvsc`` is the ``lgvsc`` command."""

from lgvsc.cli import main

raise SystemExit(main())
