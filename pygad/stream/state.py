"""Versioned NumPy archives for stream estimator state.

An archive is a plain ``.npz`` (no pickle: loaded with ``np.load(allow_pickle=False)``) with
``__format__`` (the format name and version) and ``__meta__`` (JSON: the estimator class and
its constructor arguments), plus the estimator's arrays (``vectors`` [K, m, d], ``scalars``
[K, 11], and ``keys_int``/``keys_str`` for keyed state). Files are
written atomically: a temporary file in the target folder, flushed and fsynced, then renamed
over the target, so a reader sees the old or the new archive, never a torn one. A save that
is interrupted (an exception, a signal) removes its temporary file; one killed outright leaves
it, and the next save into that folder removes temporary files of that target older than a
minute.

Loading validates every field before any of it reaches the estimator: the format name and
version, the JSON metadata (class name, parameters restricted to the estimator's own, with
JSON scalar values), and each array's presence, dtype and shape (the estimator checks the
shapes against its own layout and the keys for uniqueness). Anything else is an
:class:`pygad.InvalidArchiveError` naming the file (or ``archive`` for in-memory state).
"""
from __future__ import annotations

import glob
import io
import json
import os
import tempfile
import time
import zipfile
import zlib

import numpy as np

from .._npz import load_npz as _open_npz
from ..errors import InvalidArchiveError

FORMAT = "pygad.stream"
VERSION = 1


def pack(class_name: str, params: dict, arrays: dict) -> dict:
    """A state dict: the format tag, the JSON metadata (class, params) and the arrays."""
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


def _text(archive, key: str) -> str:
    a = np.asarray(archive[key])
    if a.ndim != 0 or a.dtype.kind != "U":
        raise InvalidArchiveError(f"'{key}' must be a text scalar, got dtype {a.dtype} shape {list(a.shape)}")
    return str(a[()])


def _json_scalar(v) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def unpack(archive) -> tuple[str, dict, dict]:
    """(class name, params, arrays) of a state dict or an opened ``.npz``.

    Checks the format, the version and the metadata's structure. Raises InvalidArchiveError.
    """
    if not (hasattr(archive, "keys") and hasattr(archive, "__getitem__")):
        raise InvalidArchiveError(f"not a {FORMAT} archive (a {type(archive).__name__}, not a dict of arrays)")
    keys = list(archive.keys())
    if "__format__" not in keys:
        raise InvalidArchiveError(f"not a {FORMAT} archive (no '__format__' entry; keys: {sorted(keys)[:8]})")
    fmt = _text(archive, "__format__")
    name, sep, ver = fmt.partition("/")
    if name != FORMAT or not sep:
        raise InvalidArchiveError(f"not a {FORMAT} archive (format {fmt!r})")
    if not (ver.isascii() and ver.isdigit()) or int(ver) < 1:
        raise InvalidArchiveError(f"garbled archive version {ver!r} (format {fmt!r}; expected {FORMAT}/<n>)")
    if int(ver) > VERSION:
        raise InvalidArchiveError(f"archive version {ver} is newer than this pygad ({VERSION}); upgrade pygad")
    if "__meta__" not in keys:
        raise InvalidArchiveError("corrupt archive: no '__meta__' entry (class and parameters)")
    unknown = sorted(k for k in keys if k.startswith("__") and k not in ("__format__", "__meta__"))
    if unknown:
        raise InvalidArchiveError(f"corrupt archive: unknown entries {unknown}")
    try:
        meta = json.loads(_text(archive, "__meta__"))
    except json.JSONDecodeError as exc:
        raise InvalidArchiveError(f"corrupt archive: '__meta__' is not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("class"), str) \
            or not isinstance(meta.get("params"), dict):
        raise InvalidArchiveError("corrupt archive: '__meta__' must be {\"class\": str, \"params\": {...}}")
    for k, v in meta["params"].items():
        ok = _json_scalar(v) or (isinstance(v, dict) and all(_json_scalar(w) for w in v.values()))
        if not ok:
            raise InvalidArchiveError(f"corrupt archive: parameter {k!r} has a value of type {type(v).__name__}")
    arrays = {}
    for k in keys:
        if k.startswith("__"):
            continue
        a = np.asarray(archive[k])
        if a.dtype.kind not in "biufU":
            raise InvalidArchiveError(f"corrupt archive: array {k!r} has dtype {a.dtype}")
        arrays[k] = a
    return meta["class"], meta["params"], arrays


def check_array(arrays: dict, key: str, kinds: str, ndim: int, shape: tuple = ()) -> np.ndarray:
    """``arrays[key]``, checked for dtype kind, dimensions and sizes.

    ``arrays[key]`` with a dtype kind in ``kinds`` (NumPy kind letters), ``ndim`` dimensions
    and, where ``shape`` gives them, those sizes (None = any). Raises InvalidArchiveError.
    """
    if key not in arrays:
        raise InvalidArchiveError(f"corrupt archive: missing array {key!r}")
    a = arrays[key]
    if a.dtype.kind not in kinds or a.ndim != ndim or any(
            want is not None and got != want for got, want in zip(a.shape, shape)):
        want = "[" + ", ".join("*" if w is None else str(w) for w in (shape or (None,) * ndim)) + "]"
        raise InvalidArchiveError(f"corrupt archive: array {key!r} must have shape {want} and a dtype of kind "
                                  f"{kinds!r}, got dtype {a.dtype} shape {list(a.shape)}")
    return a


def to_bytes(state: dict) -> bytes:
    """A state dict as ``.npz`` bytes."""
    buf = io.BytesIO()
    np.savez(buf, **state)
    return buf.getvalue()


def _open(source, where: str) -> dict:
    try:
        z = _open_npz(source)
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, zlib.error, KeyError) as exc:
        raise InvalidArchiveError(f"{where}: not a readable {FORMAT} archive (empty, truncated or not an .npz: "
                                  f"{type(exc).__name__}: {exc})", _path_of(source)) from exc
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise InvalidArchiveError(f"{where}: a single .npy array, not a {FORMAT} archive (.npz)", _path_of(source))
    try:
        with z:
            return {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, zlib.error, KeyError) as exc:
        raise InvalidArchiveError(f"{where}: not a readable {FORMAT} archive (truncated or corrupt: "
                                  f"{type(exc).__name__}: {exc})", _path_of(source)) from exc


def _path_of(source):
    return None if isinstance(source, io.BytesIO) else source


def from_bytes(b: bytes) -> dict:
    """The state dict of ``.npz`` bytes (checked; raises InvalidArchiveError)."""
    if not isinstance(b, (bytes, bytearray, memoryview)):
        raise InvalidArchiveError(f"archive bytes must be bytes, got {type(b).__name__}")
    return _open(io.BytesIO(bytes(b)), "archive bytes")


def load_file(path) -> dict:
    """The state dict of an ``.npz`` file (checked; errors name the path)."""
    return _open(os.fspath(path), os.fspath(path))


def load_into(obj, state: dict, where: str | None = None):
    """``obj.load_state_dict(state)`` with errors naming ``where`` (the file) when given."""
    try:
        return obj.load_state_dict(state)
    except InvalidArchiveError as exc:
        if where is None:
            raise
        raise InvalidArchiveError(f"{where}: {exc}", where) from None


_STALE_S = 60.0


def _remove_stale_temps(path: str) -> None:
    """Temporary files of earlier saves to ``path`` that were killed before they could clean up.

    Older than a minute, so a concurrent save's file is never touched.
    """
    folder, base = os.path.split(os.path.abspath(path))
    now = time.time()
    for tmp in glob.glob(os.path.join(glob.escape(folder), f".tmp-{glob.escape(base)}-*")):
        try:
            if now - os.path.getmtime(tmp) > _STALE_S:
                os.unlink(tmp)
        except OSError:
            pass


def save_atomic(path, state: dict, compress: bool = False) -> None:
    """Write ``state`` to ``path`` atomically (temporary file, fsync, rename)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    _remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{os.path.basename(path)}-", suffix=".npz", dir=folder)
    done = False
    try:
        with os.fdopen(fd, "wb") as f:
            (np.savez_compressed if compress else np.savez)(f, **state)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        done = True
    finally:
        if not done:
            try:
                os.unlink(tmp)
            except OSError:
                pass
