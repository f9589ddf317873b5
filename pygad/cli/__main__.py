"""``python -m pygad.cli``: the ``pygad`` command."""
from . import main

raise SystemExit(main())
