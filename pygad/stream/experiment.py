"""The drift experiment of Sankararaman & Narayanaswamy (NeurIPS 2023) on real handwritten digits.

Data: by default scikit-learn's bundled 8x8 digits (``sklearn.datasets.load_digits``: 1,797
real digits, UCI "Optical Recognition of Handwritten Digits", shipped inside scikit-learn, so
the experiment runs on a fresh install); or a ``.npz`` of 28x28 MNIST digits (keys ``x`` uint8
[N, 28, 28], ``y``). ``pygad stream drift`` runs it; ``bench/quality/stream_drift.py`` repeats
it over seeds on an MNIST archive.

Protocol: one digit under random rotations is the normal stream; other digits (also rotated)
arrive at a small rate as anomalies; at abrupt change points the normal digit switches to
another one. Every method scores each sample against its state *before* learning it
(prequential), and learns every sample (unsupervised: labels are only used for evaluation).

Methods:
* ``pygad ClippedSGDSubspace()``: pygad's detector for image-like streams (robust streaming
  PCA, clipped Sanger steps), with its defaults;

and, all with the same robust standardised score
``sqrt(mean_j min((x_j - mu_j)^2 / (s_j^2 + f^2), 9))`` (``s`` a per-pixel mean absolute
deviation tracked like ``mu``), so only the estimation of ``mu``/``s`` differs:

* ``pygad ClippedSGDMean(score_clip=3)``: clipped SGD, lr * T^-alpha, doubling trick;
* ``SGD 1/t (no clip)``: the running mean (optimal without drift);
* ``SGD constant (no clip)``: constant learning rate, no clipping (optimal without noise);
* ``sliding window``: mean and deviation of the last ``window`` samples;
* ``river HalfSpaceTrees``: river's streaming anomaly detector (its own score).

Reported: ROC AUC and average precision overall and per segment, and the samples each method
needs after a change point to recover (see :func:`recovery_samples`).
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

BUILTIN_NAME = "scikit-learn 8x8 digits"


def load_images(path=None) -> tuple[np.ndarray, np.ndarray, str]:
    """(images float32 [N, h, w] in [0, 1], labels uint8 [N], description).

    ``path=None``: scikit-learn's bundled 8x8 digits (pixels 0..16); else an ``.npz`` with
    ``x`` (uint8 pixels 0..255, [N, h, w] or [N, h*w] of a square image) and ``y``.
    """
    if path is None:
        from sklearn.datasets import load_digits
        d = load_digits()
        return (d.images.astype(np.float32) / 16.0, d.target.astype(np.uint8),
                f"{BUILTIN_NAME} (sklearn.datasets.load_digits)")
    imgs, labels = _read_images(path)
    if imgs.ndim == 2:
        side = math.isqrt(imgs.shape[1])
        imgs = imgs.reshape(imgs.shape[0], side, side)
    return (imgs.astype(np.float32) / 255.0, np.asarray(labels).astype(np.uint8),
            f"{Path(path).name} ({imgs.shape[1]}x{imgs.shape[2]} digits)")


def _read_images(path) -> tuple:
    """``x`` and ``y`` of an image archive; InvalidArchiveError naming the file otherwise."""
    import zipfile
    import zlib
    from ..errors import InvalidArchiveError
    try:
        from .._npz import load_npz as _open_npz
        z = _open_npz(path)
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, zlib.error) as exc:
        raise InvalidArchiveError(f"{path}: not an .npz image archive ({type(exc).__name__}: {exc})", path) from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise InvalidArchiveError(f"{path}: a single .npy array, not an .npz archive with 'x' and 'y'", path)
    try:
        with z:
            if "x" not in z.files or "y" not in z.files:
                raise InvalidArchiveError(f"{path}: needs arrays 'x' (images) and 'y' (labels), has {z.files}", path)
            imgs, labels = z["x"], z["y"]
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, zlib.error) as exc:
        if isinstance(exc, InvalidArchiveError):
            raise
        raise InvalidArchiveError(f"{path}: truncated or corrupt archive ({type(exc).__name__}: {exc})", path) from None
    ok_shape = imgs.ndim == 3 or (imgs.ndim == 2 and math.isqrt(imgs.shape[1]) ** 2 == imgs.shape[1])
    if imgs.dtype.kind not in "biuf" or not ok_shape or labels.shape != imgs.shape[:1] or labels.dtype.kind not in "iu":
        raise InvalidArchiveError(f"{path}: 'x' must be numeric [N, h, w] (or [N, h*w] of square images) and 'y' "
                                  f"integer [N]; got x {imgs.dtype} {list(imgs.shape)}, y {labels.dtype} "
                                  f"{list(labels.shape)}", path)
    return imgs, labels


def make_stream(path=None, digits=(0, 1, 7, 4), segment_len=2000, anomaly_rate=0.05,
                max_angle=45.0, seed=0):
    """Build the rotated-digits drift stream.

    ``path=None``: scikit-learn's 8x8 digits; or an MNIST ``.npz``, see :func:`load_images`.
    Returns (X float32 [n, h*w] in [0, 1], is_anomaly uint8 [n], digit uint8 [n],
    change_points list[int]).
    """
    from scipy.ndimage import rotate
    rng = np.random.default_rng(seed)
    imgs, labels, _ = load_images(path)
    n = segment_len * len(digits)
    X = np.empty((n, imgs.shape[1] * imgs.shape[2]), np.float32)
    anom = np.zeros(n, np.uint8)
    dig = np.empty(n, np.uint8)
    for s, normal in enumerate(digits):
        normal_idx = np.flatnonzero(labels == normal)
        other_idx = np.flatnonzero(labels != normal)
        for t in range(segment_len):
            i = s * segment_len + t
            is_anom = rng.random() < anomaly_rate
            src = rng.choice(other_idx if is_anom else normal_idx)
            angle = rng.uniform(-max_angle, max_angle)
            img = rotate(imgs[src], angle, reshape=False, order=1,
                         mode="constant", cval=0.0)
            X[i] = np.clip(img, 0.0, 1.0).reshape(-1)
            anom[i] = is_anom
            dig[i] = labels[src]
    change_points = [segment_len * s for s in range(1, len(digits))]
    return X, anom, dig, change_points


# ------------------------------------------------------------------------------ baselines
def _std_score(x, mu, s, floor_frac=0.01, score_clip=3.0):
    """The score of ClippedSGDMean (same floor and per-feature cap), for the baselines."""
    f = floor_frac * s.mean()
    z2 = (x - mu) ** 2 / (s * s + f * f + 1e-30)
    return float(np.sqrt(np.mean(np.minimum(z2, score_clip ** 2))))


def sgd_unclipped(X, rate="1/t", floor_frac=0.01):
    """Prequential scores of unclipped SGD on the mean (and mean absolute deviation).

    ``rate="1/t"`` (running mean) or a float (constant learning rate).
    """
    n, d = X.shape
    mu = X[0].astype(np.float64).copy()
    s = np.zeros(d)
    out = np.zeros(n)
    for t in range(1, n):
        x = X[t]
        out[t] = _std_score(x, mu, s, floor_frac) if t >= 2 else 0.0
        eta = 1.0 / (t + 1) if rate == "1/t" else float(rate)
        r = x - mu
        mu += eta * r
        s += eta * (np.abs(r) - s)
    return out


def sliding_window(X, window=500, floor_frac=0.01):
    """Prequential scores against the mean and mean absolute deviation of the last samples."""
    n, d = X.shape
    out = np.zeros(n)
    for t in range(1, n):
        lo = max(0, t - window)
        W = X[lo:t]
        mu = W.mean(0)
        s = np.abs(W - mu).mean(0)
        out[t] = _std_score(X[t], mu, s, floor_frac) if t > 1 else 0.0
    return out


def half_space_trees(X, seed=0, progress=False):
    """Prequential scores of river's HalfSpaceTrees (25 trees, height 10, window 250)."""
    from river import anomaly
    hst = anomaly.HalfSpaceTrees(n_trees=25, height=10, window_size=250, seed=seed)
    out = np.zeros(X.shape[0])
    it = range(X.shape[0])
    if progress:
        from tqdm import tqdm
        it = tqdm(it, desc="river HalfSpaceTrees", leave=False)
    for t in it:
        x = dict(enumerate(X[t].tolist()))
        out[t] = hst.score_one(x)
        hst.learn_one(x)
    return out


# ------------------------------------------------------------------------------ metrics
def recovery_samples(scores, anom, cp, seg_end, window=25):
    """Samples after change point ``cp`` until the method has adapted to the new normal digit.

    Until the rolling median (over ``window`` normal samples) of the scores of normal samples
    falls to 1.1 times the median normal score of the second half of the segment (the method's
    own steady state). ``None`` if it never does within the segment.
    """
    half = np.arange(cp + (seg_end - cp) // 2, seg_end)
    ref = 1.1 * np.median(scores[half[anom[half] == 0]])
    idx = np.arange(cp, seg_end)
    idx = idx[anom[idx] == 0]
    s = scores[idx]
    for k in range(0, len(s) - window + 1):
        if np.median(s[k:k + window]) <= ref:
            return int(idx[k + window - 1] - cp)
    return None


def evaluate(scores, anom, change_points, n):
    """AUC and AP overall and per segment, and the recovery after each change point."""
    from sklearn.metrics import average_precision_score, roc_auc_score
    bounds = [0] + list(change_points) + [n]
    res = {"auc": float(roc_auc_score(anom, scores)),
           "ap": float(average_precision_score(anom, scores)), "segments": [], "recovery": []}
    for a, b in zip(bounds[:-1], bounds[1:]):
        res["segments"].append({"auc": float(roc_auc_score(anom[a:b], scores[a:b])),
                                "ap": float(average_precision_score(anom[a:b], scores[a:b]))})
    for i, cp in enumerate(change_points):
        res["recovery"].append(recovery_samples(scores, anom, cp, bounds[i + 2]))
    return res


# ------------------------------------------------------------------------------ the run
#: the method names of pygad's two detectors in the results
SUBSPACE = "pygad ClippedSGDSubspace()"
MEAN = "pygad ClippedSGDMean(score_clip=3)"


def run_experiment(data=None, digits=(0, 1, 7, 4), segment_len=2000, anomaly_rate=0.05,
                   max_angle=45.0, seed=0, const_lr=0.02, window=500, hst=True,
                   progress=True) -> dict:
    """Run every method on the rotated-digits drift stream; returns the config and the results per method."""
    import pygad.stream as ps
    X, anom, dig, cps = make_stream(data, digits, segment_len, anomaly_rate, max_angle, seed)
    n = X.shape[0]
    methods = {}
    timings = {}

    def timed(name, fn):
        t = time.perf_counter()
        methods[name] = np.asarray(fn(), np.float64)
        timings[name] = time.perf_counter() - t

    ps.ClippedSGDSubspace().process_many(X[:10])               # compile outside the timing
    ps.ClippedSGDMean(score_clip=3.0).process_many(X[:10])
    sub = ps.ClippedSGDSubspace()
    timed(SUBSPACE, lambda: sub.process_many(X))
    mean = ps.ClippedSGDMean(score_clip=3.0)
    timed(MEAN, lambda: mean.process_many(X))
    timed("SGD 1/t (no clip)", lambda: sgd_unclipped(X, "1/t"))
    timed(f"SGD constant {const_lr} (no clip)", lambda: sgd_unclipped(X, const_lr))
    timed(f"sliding window {window}", lambda: sliding_window(X, window))
    skipped = None
    if hst:
        try:
            import river  # noqa: F401  (optional: only this baseline needs it)
        except ImportError:
            skipped = "river HalfSpaceTrees skipped: river is not installed (pip install river)"
            hst = False
    if hst:
        timed("river HalfSpaceTrees", lambda: half_space_trees(X, seed, progress))
    results = {k: evaluate(np.nan_to_num(v, nan=0.0, posinf=1e300), anom, cps, n)
               for k, v in methods.items()}
    for k in results:
        results[k]["seconds"] = timings[k]
    thr = ps.AdaptiveThreshold()
    flags, thresholds = thr.process_many(methods[SUBSPACE], return_thresholds=True)
    tp = int(((flags == 1) & (anom == 1)).sum())
    flag_stats = {"flagged": int(flags.sum()), "precision": tp / max(1, int(flags.sum())),
                  "recall": tp / max(1, int(anom.sum()))}
    return {"config": {"digits": list(digits), "segment_len": segment_len,
                       "anomaly_rate": anomaly_rate, "max_angle": max_angle, "seed": seed,
                       "n": n, "n_anomalies": int(anom.sum()), "change_points": cps,
                       "data": BUILTIN_NAME if data is None else str(data),
                       "n_features": int(X.shape[1]), "note": skipped},
            "results": results, "threshold_flags": flag_stats,
            "_scores": methods, "_thresholds": thresholds, "_anom": anom, "_flags": flags}


def format_table(out: dict) -> str:
    """The results of :func:`run_experiment` as a Markdown table."""
    cfg = out["config"]
    nseg = len(cfg["digits"])
    head = ["method", "AUC", "AP"] + [f"AUC seg{i + 1} ({d})" for i, d in enumerate(cfg["digits"])] \
        + [f"recovery @{c}" for c in cfg["change_points"]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in out["results"].items():
        row = [name, f"{r['auc']:.3f}", f"{r['ap']:.3f}"]
        row += [f"{r['segments'][i]['auc']:.3f}" for i in range(nseg)]
        row += ["never" if v is None else str(v) for v in r["recovery"]]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def plot(out: dict, path) -> None:
    """Plot each method's scores over the stream, anomalies and change points marked, to ``path``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    anom = out["_anom"]
    names = list(out["_scores"])
    fig, axes = plt.subplots(len(names), 1, figsize=(12, 2.2 * len(names)), sharex=True)
    t = np.arange(anom.shape[0])
    for ax, name in zip(np.atleast_1d(axes), names):
        s = out["_scores"][name]
        lo, hi = np.nanpercentile(s, [1, 99.5])
        ax.scatter(t[anom == 0], s[anom == 0], s=1, c="tab:blue", label="normal")
        ax.scatter(t[anom == 1], s[anom == 1], s=4, c="tab:red", label="anomaly")
        if name.startswith("pygad"):
            thr = out["_thresholds"]
            ax.plot(t, np.where(np.isfinite(thr), thr, np.nan), c="k", lw=0.8,
                    label="AdaptiveThreshold")
            fin = thr[np.isfinite(thr)]
            if fin.size:
                hi = max(hi, float(np.percentile(fin, 99)))
        for c in out["config"]["change_points"]:
            ax.axvline(c, c="tab:green", ls="--", lw=1)
        ax.set_ylim(lo - 0.05 * (hi - lo), hi + 0.1 * (hi - lo))
        r = out["results"][name]
        ax.set_title(f"{name}: AUC {r['auc']:.3f}, AP {r['ap']:.3f}", fontsize=9)
        ax.legend(loc="upper right", fontsize=7, markerscale=3)
    np.atleast_1d(axes)[-1].set_xlabel("sample (green: change points, normal digit switches)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def to_json(out: dict) -> str:
    """The results of :func:`run_experiment` as JSON (private ``_`` entries left out)."""
    return json.dumps({k: v for k, v in out.items() if not k.startswith("_")}, indent=2)
