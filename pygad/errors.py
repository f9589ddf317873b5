"""pygad's user-facing error family.

Every error a user can cause (a bad option, a malformed table, a missing or tampered file)
is a :class:`PygadError`; the subclasses also derive from the matching built-in exception so
``except ValueError`` / ``except OSError`` keep working. The ``pygad`` command prints such an
error as one line ``pygad: error: <message>`` and exits with status 2.
"""
from __future__ import annotations


class PygadError(Exception):
    """Base class of the errors a user's input or files can cause."""


class PygadValueError(PygadError, ValueError):
    """A bad value: an option, a table cell, a label, an id."""


class PygadTypeError(PygadError, TypeError):
    """An argument of the wrong type."""


class PygadFileError(PygadError, OSError):
    """A bad, missing or tampered file; the message names the path."""


class InvalidArchiveError(PygadFileError):
    """A file that is not a valid pygad archive (wrong format, version or contents)."""


__all__ = ["PygadError", "PygadValueError", "PygadTypeError", "PygadFileError", "InvalidArchiveError"]
