"""``python -m pygad.cli``: the same command line as the ``pygad`` console script."""
from . import main

raise SystemExit(main())
