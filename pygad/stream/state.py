"""Versioned NumPy archives for stream estimator state.

An archive is a plain ``.npz`` (no pickle: loaded with ``np.load(allow_pickle=False)``) with
``__format__`` (the format name and version) and ``__meta__`` (JSON: the estimator class and
its constructor arguments), plus the estimator's arrays (``vectors`` [K, m, d], ``scalars``
[K, 11], and ``keys_int``/``keys_str`` for keyed state). Files are
written atomically: a temporary file in the target folder, flushed and fsynced, then renamed
over the target, so a reader sees the old or the new archive, never a torn one.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile

import numpy as np

FORMAT = "pygad.stream"
VERSION = 1


def pack(class_name: str, params: dict, arrays: dict) -> dict:
    out = {
        "__format__": np.array(f"{FORMAT}/{VERSION}"),
        "__meta__": np.array(json.dumps({"class": class_name, "params": params},
                                        sort_keys=True, separators=(",", ":"))),
    }
    for k, v in arrays.items():
        if isinstance(v, np.ndarray) and v.dtype == object:
            raise TypeError(f"state array {k!r} has dtype object; only int and str keys can be saved")
        out[k] = np.asarray(v)
    return out


def unpack(archive) -> tuple[str, dict, dict]:
    """(class name, params, arrays) of a state dict or an opened ``.npz``; checks the version."""
    fmt = str(archive["__format__"]) if "__format__" in archive else ""
    name, _, ver = fmt.partition("/")
    if name != FORMAT:
        raise ValueError(f"not a {FORMAT} archive (format {fmt!r})")
    if int(ver) > VERSION:
        raise ValueError(f"archive version {ver} is newer than this pygad ({VERSION}); upgrade pygad")
    arrays = {k: np.asarray(archive[k]) for k in archive.keys() if not k.startswith("__")}
    meta = json.loads(str(archive["__meta__"]))
    return meta["class"], meta["params"], arrays


def to_bytes(state: dict) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **state)
    return buf.getvalue()


def from_bytes(b: bytes) -> dict:
    with np.load(io.BytesIO(b), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def save_atomic(path, state: dict, compress: bool = False) -> None:
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            (np.savez_compressed if compress else np.savez)(f, **state)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def load_file(path) -> dict:
    try:
        with np.load(os.fspath(path), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, ValueError) as exc:
        raise ValueError(f"{path}: not a readable pygad.stream archive ({exc})") from exc
