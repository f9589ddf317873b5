"""The saved-detector directory format: a JSON config plus weight files, loaded without running code.

A model directory holds ``pygad-model.json`` and the weight files it lists::

    pygad-model.json   {"format": "pygad-detector", "format_version": 1, "pygad_version": ...,
                        "detector": "TreeDetector" | "FeatureOnlyDetector" | "GNNDetector",
                        "params": {...}, "fitted": {...}, "schema": {...},
                        "files": {"trees.npz": "<sha256>", ...}, "info": {...}}
    trees.npz          gradient-boosted trees as plain arrays (TreeDetector; np.load(allow_pickle=False))
    weights.pt         the torch state dict (GNNDetector; torch.load(weights_only=True))
    arrays.npz         the GNN's feature scaler (np.load(allow_pickle=False))

``schema`` is the feature schema the detector was fitted on: the target node type, the node
types, the relations ``[src, rel, dst]`` and the feature column names (or widths) per type.
Loading checks the format name and version, and every file against its SHA-256 in the config,
before it reads any weights: a directory from another format version, or a file changed after
saving, raises :class:`~pygad.errors.PygadFileError` naming the path.

The trees are stored as arrays of their nodes (feature, threshold, children, leaf value, where
missing values go) and evaluated by :class:`TreeEnsemble`, which reproduces scikit-learn's
``HistGradientBoostingClassifier.decision_function`` bit for bit (same comparisons, same float64
summation order), so no pickle is needed.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile

import numpy as np

from ..errors import PygadFileError

FORMAT = "pygad-detector"
FORMAT_VERSION = 1
CONFIG_NAME = "pygad-model.json"


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _json_clean(o):
    if isinstance(o, dict):
        return {str(k): _json_clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_json_clean(v) for v in o]
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, float) and not np.isfinite(o):
        return None
    return o


def check_model_target(path) -> None:
    """Refuse a model directory target that cannot be written (before any fitting)."""
    path = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise PygadFileError(f"{path}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise PygadFileError(f"{path}: the folder {parent} is not writable")
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise PygadFileError(f"{path}: exists and is not a folder")
        if os.listdir(path) and not os.path.isfile(os.path.join(path, CONFIG_NAME)):
            raise PygadFileError(f"{path}: a folder that is not empty and holds no {CONFIG_NAME}; "
                                 "refusing to replace it")


def write_model_dir(path, config: dict, writers: dict) -> None:
    """Write a model directory atomically: files into a temporary folder beside ``path``, then a rename.

    Args:
        path: the model directory (replaced if it is an earlier model directory).
        config: the config without ``files``/``format`` (added here).
        writers: ``{file name: callable(file path)}`` writing each weight file.
    """
    from .. import __version__

    path = os.path.abspath(os.fspath(path))
    check_model_target(path)
    parent = os.path.dirname(path)
    tmp = tempfile.mkdtemp(prefix=".tmp-" + os.path.basename(path) + "-", dir=parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; a model directory is an ordinary folder
    old = None
    try:
        files = {}
        for name, write in writers.items():
            fp = os.path.join(tmp, name)
            write(fp)
            files[name] = _sha256(fp)
        cfg = {"format": FORMAT, "format_version": FORMAT_VERSION, "pygad_version": __version__, **config,
               "files": files}
        with open(os.path.join(tmp, CONFIG_NAME), "w", encoding="utf-8") as f:
            json.dump(_json_clean(cfg), f, indent=1, allow_nan=False)
            f.write("\n")
        if os.path.exists(path):
            old = tempfile.mkdtemp(prefix=".old-" + os.path.basename(path) + "-", dir=parent)
            os.rmdir(old)
            os.replace(path, old)
        os.replace(tmp, path)
        tmp = None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def read_model_dir(path) -> dict:
    """The checked config of a model directory (format, version, file hashes); files not yet read."""
    from .. import __version__

    path = os.fspath(path)
    cfg_path = os.path.join(path, CONFIG_NAME)
    if not os.path.isdir(path):
        raise PygadFileError(f"{path}: no such model directory")
    if not os.path.isfile(cfg_path):
        raise PygadFileError(f"{path}: not a pygad model directory (no {CONFIG_NAME})")
    try:
        with open(cfg_path, encoding="utf-8") as f:
            cfg = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PygadFileError(f"{cfg_path}: not valid JSON ({exc}); the file is damaged or was edited") from None
    if not isinstance(cfg, dict) or cfg.get("format") != FORMAT:
        raise PygadFileError(f"{cfg_path}: not a pygad detector config (format {cfg.get('format')!r}"
                             if isinstance(cfg, dict) else f"{cfg_path}: not a pygad detector config")
    ver = cfg.get("format_version")
    if ver != FORMAT_VERSION:
        raise PygadFileError(f"{cfg_path}: model format version {ver!r} (written by pygad "
                             f"{cfg.get('pygad_version', '?')}); this pygad ({__version__}) reads version "
                             f"{FORMAT_VERSION}: re-fit and save the detector with this version")
    files = cfg.get("files")
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise PygadFileError(f"{cfg_path}: the 'files' entry is missing or malformed")
    for name, digest in files.items():
        if os.path.basename(name) != name or name in ("", ".", ".."):
            raise PygadFileError(f"{cfg_path}: file name {name!r} is not a plain file name")
        fp = os.path.join(path, name)
        if not os.path.isfile(fp):
            raise PygadFileError(f"{fp}: missing from the model directory")
        if _sha256(fp) != digest:
            raise PygadFileError(f"{fp}: its SHA-256 does not match the one recorded in {CONFIG_NAME}; the file "
                                 "was changed after saving (or is damaged): save the model again")
    for key in ("detector", "params", "fitted", "schema"):
        if key not in cfg:
            raise PygadFileError(f"{cfg_path}: no {key!r} entry")
    return cfg


def load_npz(path) -> dict:
    """All arrays of an .npz written by :func:`write_model_dir`'s writers (no pickles)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (ValueError, OSError) as exc:
        raise PygadFileError(f"{path}: not a readable array archive ({' '.join(str(exc).split())})") from None


def load_state_dict(path):
    """A torch state dict read with ``weights_only=True`` (tensors and plain containers only)."""
    import torch

    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle.UnpicklingError, RuntimeError, EOFError ... from a bad file
        raise PygadFileError(f"{path}: not a readable weights file ({' '.join(str(exc).split())[:300]})") from None
    if not isinstance(sd, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in sd.items()):
        raise PygadFileError(f"{path}: does not hold a state dict of named tensors")
    return sd


# ---- gradient-boosted trees as arrays --------------------------------------------------------
def tree_arrays(clf) -> dict:
    """The nodes of a fitted binary ``HistGradientBoostingClassifier`` as flat arrays."""
    if getattr(clf, "n_trees_per_iteration_", 1) != 1:
        raise ValueError("only binary classifiers (one tree per iteration) can be saved")
    if getattr(clf, "is_categorical_", None) is not None and np.any(clf.is_categorical_):
        raise ValueError("trees with categorical splits cannot be saved")
    cols = {k: [] for k in ("feature", "threshold", "left", "right", "is_leaf", "missing_left", "value")}
    ptr = [0]
    for it in clf._predictors:
        nodes = it[0].nodes
        if nodes["is_categorical"].any():
            raise ValueError("trees with categorical splits cannot be saved")
        cols["feature"].append(nodes["feature_idx"].astype(np.int64))
        cols["threshold"].append(nodes["num_threshold"].astype(np.float64))
        cols["left"].append(nodes["left"].astype(np.int64))
        cols["right"].append(nodes["right"].astype(np.int64))
        cols["is_leaf"].append(nodes["is_leaf"].astype(bool))
        cols["missing_left"].append(nodes["missing_go_to_left"].astype(bool))
        cols["value"].append(nodes["value"].astype(np.float64))
        ptr.append(ptr[-1] + nodes.shape[0])
    out = {k: (np.concatenate(v) if v else np.zeros(0, dtype=np.float64 if k in ("threshold", "value") else
                                                      (bool if k in ("is_leaf", "missing_left") else np.int64)))
           for k, v in cols.items()}
    out["tree_ptr"] = np.asarray(ptr, dtype=np.int64)
    out["baseline"] = np.asarray(clf._baseline_prediction, dtype=np.float64).reshape(-1)[:1]
    out["n_features"] = np.asarray([clf.n_features_in_], dtype=np.int64)
    return out


class TreeEnsemble:
    """Evaluates trees stored by :func:`tree_arrays`; ``decision_function`` equals scikit-learn's.

    Args:
        arrays: the dict of :func:`tree_arrays` (checked here: shapes, index ranges, acyclic
            children), e.g. read back from an .npz.
        source: a name for error messages.
    """

    def __init__(self, arrays: dict, source: str = "trees"):
        need = ("feature", "threshold", "left", "right", "is_leaf", "missing_left", "value", "tree_ptr",
                "baseline", "n_features")
        missing = [k for k in need if k not in arrays]
        if missing:
            raise PygadFileError(f"{source}: missing tree arrays {missing}")
        a = {k: np.asarray(arrays[k]) for k in need}
        n = a["feature"].shape[0]
        if any(a[k].shape != (n,) for k in need[:7]):
            raise PygadFileError(f"{source}: tree arrays of unequal lengths")
        ptr = a["tree_ptr"].astype(np.int64)
        if ptr.ndim != 1 or ptr.shape[0] < 1 or ptr[0] != 0 or ptr[-1] != n or np.any(np.diff(ptr) < 1 if
                                                                                       ptr.shape[0] > 1 else False):
            raise PygadFileError(f"{source}: malformed tree offsets")
        self.n_features = int(a["n_features"].reshape(-1)[0])
        leaf = a["is_leaf"].astype(bool)
        feat, left, right = (a[k].astype(np.int64) for k in ("feature", "left", "right"))
        tree_of = np.repeat(np.arange(ptr.shape[0] - 1), np.diff(ptr))
        local = np.arange(n) - ptr[tree_of]
        size = np.diff(ptr)[tree_of]
        inner = ~leaf
        # children must be later nodes of the same tree (sklearn numbers them so): no cycles, no escapes
        if np.any(inner & ((left <= local) | (right <= local) | (left >= size) | (right >= size))) or \
                np.any(inner & ((feat < 0) | (feat >= self.n_features))):
            raise PygadFileError(f"{source}: tree arrays with out-of-range children or features")
        self.feature = np.where(inner, feat, 0)
        self.threshold = a["threshold"].astype(np.float64)
        self.left = np.where(inner, left + ptr[tree_of], np.arange(n))
        self.right = np.where(inner, right + ptr[tree_of], np.arange(n))
        self.is_leaf = leaf
        self.missing_left = a["missing_left"].astype(bool)
        self.value = a["value"].astype(np.float64)
        self.roots = ptr[:-1]
        self.baseline = float(a["baseline"].reshape(-1)[0])
        self.depth = int(np.max(np.diff(ptr))) if ptr.shape[0] > 1 else 0

    @property
    def n_trees(self) -> int:
        """The number of trees in the ensemble."""
        return int(self.roots.shape[0])

    def decision_function(self, X, chunk: int = 4096) -> np.ndarray:
        """Raw score (log-odds) per row: the baseline plus each tree's leaf value, in tree order."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"expected X of shape [N, {self.n_features}], got {list(X.shape)}")
        out = np.empty(X.shape[0], dtype=np.float64)
        T = self.n_trees
        for lo in range(0, X.shape[0], chunk):
            xb = X[lo:lo + chunk]
            m = xb.shape[0]
            node = np.broadcast_to(self.roots, (m, T)).copy()
            rows = np.arange(m)[:, None]
            for _ in range(self.depth):
                active = ~self.is_leaf[node]
                if not active.any():
                    break
                v = xb[rows, self.feature[node]]
                go_left = np.where(np.isnan(v), self.missing_left[node], v <= self.threshold[node])
                node = np.where(active, np.where(go_left, self.left[node], self.right[node]), node)
            vals = self.value[node]
            raw = np.zeros(m, dtype=np.float64) + self.baseline
            for t in range(T):  # sequential, as scikit-learn adds tree by tree
                raw += vals[:, t]
            out[lo:lo + m] = raw
        return out


__all__ = ["FORMAT", "FORMAT_VERSION", "CONFIG_NAME", "write_model_dir", "read_model_dir", "check_model_target",
           "tree_arrays", "TreeEnsemble", "load_npz", "load_state_dict"]
