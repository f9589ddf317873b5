"""Alias of :mod:`pygad.models.distributed`, pygad's data-parallel training backend.

``from pygad.integrations import distributed`` keeps working; new code imports
``pygad.models.distributed``.
"""
import sys

from ..models import distributed as _distributed

sys.modules[__name__] = _distributed
