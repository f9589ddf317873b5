"""``python -m pygad``: the same command line as the ``pygad`` console script."""
from .cli import main

raise SystemExit(main())
