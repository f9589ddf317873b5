"""``np.load`` of an ``.npz`` archive that never leaks its file.

NumPy's loader leaves the file open when the zip directory cannot be read (a truncated or
non-archive file): the loaders of datasets, stream state files and image archives open the file
here instead, so a rejected file is closed at once and an accepted one when its archive is.
"""
from __future__ import annotations

import os

import numpy as np


def load_npz(source):
    """``np.load(source, allow_pickle=False)`` for a path or a binary file object.

    Returns what NumPy returns (an ``NpzFile`` to use as a context manager, or an array for a
    ``.npy`` file) and raises what NumPy raises; a path's file is closed on failure, with the
    returned archive, or at once for a bare array.
    """
    if not isinstance(source, (str, bytes, os.PathLike)):
        return np.load(source, allow_pickle=False)
    fh = open(source, "rb")
    try:
        z = np.load(fh, allow_pickle=False)
    except BaseException:
        fh.close()
        raise
    if isinstance(z, np.lib.npyio.NpzFile):
        z.fid = fh                      # NpzFile.close() closes it
    else:
        fh.close()                      # a .npy array or a pickle refusal: nothing left to read
    return z
