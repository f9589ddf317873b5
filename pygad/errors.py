"""The errors pygad raises for user mistakes: one family, each message naming what is wrong.

Every class derives from :class:`PygadError` and from the built-in exception that fits, so
``except ValueError`` keeps working and ``except pygad.PygadError`` catches them all:

- :class:`PygadValueError` (``ValueError``): a bad value, shape, index or size; the message
  names the argument (and the position or row where it helps).
- :class:`PygadTypeError` (``TypeError``): a wrong type or dtype, naming the argument.
- :class:`PygadFileError` (``OSError``): a missing, unreadable or tampered file, naming the path.
- :class:`InvalidArchiveError` (a :class:`PygadFileError`, also a ``ValueError``): a file or
  byte string that is not a valid archive of the expected kind (truncated, wrong format or
  version, missing or malformed fields).

The native extension raises :class:`PygadValueError` / :class:`PygadTypeError` too (its
messages name the argument as the Python wrapper calls it).
"""
from __future__ import annotations

import os

__all__ = ["PygadError", "PygadValueError", "PygadTypeError", "PygadFileError", "InvalidArchiveError"]


class PygadError(Exception):
    """Base class of every error pygad raises for a user mistake."""


class PygadValueError(PygadError, ValueError):
    """A bad value, shape, index or size; the message names the argument."""


class PygadTypeError(PygadError, TypeError):
    """A wrong type or dtype; the message names the argument."""


class PygadFileError(PygadError, OSError):
    """A missing, unreadable or tampered file; the message names the path."""

    def __init__(self, message: str, path=None):
        super().__init__(message)
        #: the file concerned (None for in-memory data such as archive bytes)
        self.path = None if path is None else os.fspath(path)

    def __str__(self) -> str:   # OSError's __str__ would format errno/strerror
        return str(self.args[0]) if self.args else ""


class InvalidArchiveError(PygadFileError, ValueError):
    """A file or byte string that is not a valid archive of the expected kind.

    Also a ``ValueError``, so code written against the earlier loaders (which raised
    ``ValueError`` for a corrupt archive) keeps catching it.
    """
