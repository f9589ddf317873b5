"""Detection on the user's own tables: what ``pygad detect`` and ``pygad score`` run.

:func:`detect_tables` reads node and edge tables (:mod:`pygad.data.tables`), draws a
stratified validation split from the labelled target nodes, optionally augments the training
graph, fits a detector (the registry of :mod:`pygad.evaluation`), reports validation AUC, AP
and Recall@k, chooses the flag threshold on the validation nodes (the F1-best cut) and writes
``id, score, rank, flag`` for every target node, the saved model and a plot.
:func:`score_tables` scores new tables with a saved model (inductive: new nodes are fine, the
feature schema must match).

Outputs are checked for writability before any table is read, written to temporary files
beside their targets and renamed into place only when everything succeeded, so an error
leaves nothing behind. Errors are :class:`pygad.errors.PygadError` with one-line messages.
"""
from __future__ import annotations

import csv
import os
import sys
import tempfile
import time as _time

import numpy as np

from ..errors import PygadError, PygadFileError, PygadValueError

OUTPUT_COLUMNS = ("id", "score", "rank", "flag")
THRESHOLD_RULE = "the score that maximises F1 on the validation nodes"


# ---- small helpers ---------------------------------------------------------------------------
def _require_tables():
    from ..data.tables import require_pandas
    try:
        require_pandas()
    except ImportError as exc:
        raise PygadError(str(exc)) from None


def check_output(path, what: str, inputs=()) -> None:
    """Refuse an output path that cannot be written, before any work is done."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise PygadFileError(f"{what} {path}: the folder {folder} does not exist")
    if os.path.isdir(path):
        raise PygadFileError(f"{what} {path} is a folder")
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise PygadFileError(f"{what} {path}: not writable")
    for p in inputs:
        if os.path.exists(p) and os.path.exists(path) and os.path.samefile(p, path):
            raise PygadFileError(f"{what} {path} would overwrite the input table {p}")


def _temp_beside(path, suffix) -> str:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=os.path.dirname(os.path.abspath(path)))
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; the output is an ordinary file
    return tmp


def _bar(total: int, desc: str, quiet: bool):
    isatty = getattr(sys.stderr, "isatty", None)
    if quiet or not (isatty and isatty()):
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(total=total, desc=desc, file=sys.stderr, leave=False)


def validation_split(y: np.ndarray, fraction: float, seed: int, where: str = "") -> tuple:
    """Boolean (train, val) masks over the labelled nodes (``y >= 0``), stratified by label.

    Each side gets at least one anomaly and one normal node.
    """
    if not 0.0 < fraction < 1.0:
        raise PygadValueError(f"the validation fraction must be in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    tr = np.zeros(y.shape[0], dtype=bool)
    va = np.zeros(y.shape[0], dtype=bool)
    for c, name in ((1, "anomalies"), (0, "normal nodes")):
        idx = rng.permutation(np.flatnonzero(y == c))
        m = idx.shape[0]
        if m < 2:
            raise PygadValueError(f"{where}only {m} labelled {name}; a validation split needs at least 2 (one to fit "
                                  "on, one to validate)")
        n_va = min(max(int(round(fraction * m)), 1), m - 1)
        va[idx[:n_va]] = True
        tr[idx[n_va:]] = True
    return tr, va


def best_f1_threshold(y, s) -> float:
    from .detectors import _best_f1_threshold
    return _best_f1_threshold(np.asarray(y), np.asarray(s, dtype=np.float64))


def pr_curve(y, s) -> tuple:
    """(recall, precision) at every distinct score threshold, highest score first."""
    y = np.asarray(y).astype(bool)
    order = np.argsort(-np.asarray(s), kind="mergesort")
    ss, yy = np.asarray(s)[order], y[order]
    last = np.r_[ss[1:] != ss[:-1], True]
    tp = np.cumsum(yy)[last]
    k = np.arange(1, yy.shape[0] + 1)[last]
    return np.r_[0.0, tp / max(int(y.sum()), 1)], np.r_[1.0, tp / k]


def ranks(scores: np.ndarray) -> np.ndarray:
    """1 = the highest score; ties keep table order."""
    order = np.argsort(-scores, kind="mergesort")
    r = np.empty(scores.shape[0], dtype=np.int64)
    r[order] = np.arange(1, scores.shape[0] + 1)
    return r


def write_scores(path, ids, scores, flags) -> None:
    """``id, score, rank, flag`` rows in table order (scores with full float precision)."""
    r = ranks(scores)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(OUTPUT_COLUMNS)
        w.writerows(zip(ids, map(repr, scores.tolist()), r.tolist(), flags.astype(int).tolist()))
        f.flush()
        os.fsync(f.fileno())


def plot_scores(path, scores, y, val_mask, threshold: float, title: str) -> None:
    """PNG: score histogram (labelled anomalies, normals, unknown) and the validation PR curve."""
    from matplotlib.figure import Figure

    from ..metrics import average_precision

    fig = Figure(figsize=(11, 4.2))
    ax, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.5, 1]})
    bins = np.histogram_bin_edges(scores, bins=min(60, max(10, int(np.sqrt(scores.shape[0])))))
    for sel, lab, col in ((y == 0, "labelled normal", "tab:blue"), (y == 1, "labelled anomaly", "tab:red"),
                          (y < 0, "unknown", "tab:gray")):
        if sel.any():
            ax.hist(scores[sel], bins=bins, histtype="stepfilled" if lab != "unknown" else "step", alpha=0.45
                    if lab != "unknown" else 1.0, color=col, label=f"{lab} ({int(sel.sum()):,})", lw=1.2)
    ax.axvline(threshold, color="k", ls="--", lw=1, label=f"flag threshold {threshold:.4g}")
    ax.set_yscale("log")
    ax.set_xlabel("score (higher = more anomalous)")
    ax.set_ylabel("nodes")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    yv, sv = y[val_mask], scores[val_mask]
    if val_mask.any() and (yv == 1).any() and (yv == 0).any():
        rec, prec = pr_curve(yv, sv)
        ax2.step(rec, prec, where="post", color="tab:purple",
                 label=f"validation (AP {average_precision(yv, sv):.3f})")
        f = sv >= threshold
        tp = int((yv[f] == 1).sum())
        ax2.plot([tp / max(int((yv == 1).sum()), 1)], [tp / max(int(f.sum()), 1)], "ko", ms=5,
                 label="at the flag threshold")
        ax2.axhline(float((yv == 1).mean()), color="tab:gray", ls=":", lw=1, label="anomaly rate")
        ax2.legend(fontsize=8, loc="lower left")
    ax2.set_xlim(0, 1.01)
    ax2.set_ylim(0, 1.02)
    ax2.set_xlabel("recall")
    ax2.set_ylabel("precision")
    ax2.set_title("validation precision-recall", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)


def _describe_graph(g, label: str | None) -> str:
    parts = []
    for t, n in g.num_nodes.items():
        bits = [f"{n:,} nodes"]
        if t in g.x:
            nf = g.x[t].shape[1]
            bits.append(f"{nf} feature{'s' if nf != 1 else ''}")
        if t in g.y:
            yy = g.y[t]
            bits.append(f"{int((yy == 1).sum()):,} anomalies and {int((yy == 0).sum()):,} normal labelled, "
                        f"{int((yy < 0).sum()):,} unknown")
        parts.append(f"{t} ({', '.join(bits)})")
    for et in g.edge_types:
        extra = [w for w, d in (("time", g.edge_time), ("weight", g.edge_attr)) if et in d]
        parts.append(f"{et[1]} {et[0]}->{et[2]} ({g.num_edges(et):,} edges{', ' + ', '.join(extra) if extra else ''})")
    return "; ".join(parts)


def _commit(temps: list, renames: list) -> None:
    for tmp, dst in renames:
        os.replace(tmp, dst)
        temps.remove(tmp)


def _cleanup(temps: list) -> None:
    for tmp in temps:
        try:
            os.unlink(tmp)
        except OSError:
            pass


# ---- pygad detect ----------------------------------------------------------------------------
def detect_tables(node_specs, edge_specs=(), *, id: str = "id", label: str = "label", time: str | None = None,
                  weight: str | None = None, src: str = "src", dst: str = "dst", target: str | None = None,
                  exclude=(), detector: str = "trees", augment: str = "none", seed: int = 0,
                  val_fraction: float = 0.2, epochs: int | None = None, device: str = "cpu", out=None,
                  save_model=None, plot=None, quiet: bool = False, log=None) -> dict:
    """Fit a detector on the labelled nodes of the tables and score every target node.

    Args:
        node_specs: ``["TYPE=FILE" | "FILE", ...]`` node tables (CSV or Parquet).
        edge_specs: ``["REL=SRC_TYPE:DST_TYPE:FILE" | "REL=FILE" | "FILE", ...]`` edge tables.
        id: id column of the node tables.
        label: label column (1 anomaly, 0 normal, blank unknown).
        time: timestamp column of the edge tables (optional).
        weight: edge weight column of the edge tables (optional).
        src: source id column of the edge tables.
        dst: destination id column of the edge tables.
        target: node type to score (default: the one whose table has the label column).
        exclude: columns of the node tables that are not features.
        detector: a name of :data:`pygad.evaluation.DETECTORS` (``trees``, ``gnn``, ``feature``).
        augment: a name of :data:`pygad.evaluation.AUGMENTERS` (``none``, ``diffusion``, ...).
        seed: seed of the validation split, the detector and the augmenter.
        val_fraction: share of the labelled nodes (per class) held out for validation.
        epochs: GNN epochs (``detector="gnn"`` only).
        device: torch device of the GNN / the augmenter.
        out: scores CSV path (``id, score, rank, flag``).
        save_model: model directory to write (optional).
        plot: PNG of the score histogram and the validation PR curve (optional).
        quiet: no progress bars.
        log: text stream for the report (default stdout; silent when ``quiet``).

    Returns:
        A dict: ``metrics`` (validation AUC/AP/Rec@k), ``threshold``, ``rule``, ``scores``,
        ``flags``, ``ids``, ``graph``, ``detector``, ``n_train``, ``n_val``, ``seconds``.
    """
    from .. import evaluation as ev
    from ..data import tables as T
    from ..metrics import evaluate

    t0 = _time.perf_counter()
    log = log if log is not None else (None if quiet else sys.stdout)
    # ---- options and output paths first: nothing is read or fitted before they are known good
    if detector not in ev.DETECTORS:
        raise PygadValueError(f"unknown detector {detector!r}; choose one of {', '.join(sorted(ev.DETECTORS))}")
    if augment not in ev.AUGMENTERS:
        raise PygadValueError(f"unknown augmentation {augment!r}; choose one of {', '.join(sorted(ev.AUGMENTERS))}")
    if epochs is not None and detector != "gnn":
        raise PygadValueError("epochs applies to the gnn detector only")
    if not 0.0 < val_fraction < 1.0:
        raise PygadValueError(f"the validation fraction must be in (0, 1), got {val_fraction}")
    if not node_specs:
        raise PygadValueError("no node tables given (--nodes)")
    _require_tables()
    node_files = T.parse_node_specs(node_specs)
    edge_files = T.parse_edge_specs(edge_specs, list(node_files))
    inputs = list(node_files.values()) + [f for *_, f in edge_files.values()]
    for p in inputs:
        if not os.path.isfile(p):
            raise PygadFileError(f"{p}: no such file")
    if out is not None:
        check_output(out, "--out", inputs)
    if plot is not None:
        check_output(plot, "--plot", inputs)
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise PygadError("--plot needs matplotlib: pip install matplotlib") from None
    if save_model is not None:
        from .persist import check_model_target
        check_model_target(save_model)

    # ---- read
    bar = _bar(len(inputs), "reading tables", quiet)
    graph = T.read_graph(node_files, edge_files, progress=(lambda p: bar.update(1) if bar else None)
                         if bar else None, id=id, label=label, time=time, weight=weight, src=src, dst=dst,
                         target=target, exclude=exclude, name=os.path.basename(inputs[0]))
    if bar:
        bar.close()
    t_read = _time.perf_counter() - t0
    tgt = graph.target_type()
    y = graph.y[tgt]
    ids = graph.node_ids[tgt]
    where = f"{node_files[tgt]}: label column {label!r} has "
    tr, va = validation_split(y, val_fraction, seed, where)

    # ---- fit (on the training part, early stopping and the threshold on the validation part)
    import torch  # noqa: F401  (the detectors need it; imported here so the timing below is the fit's)
    kw = {"epochs": epochs} if epochs is not None else {}
    if detector == "trees":
        kw["add_reverse"] = True  # table relations point either way: let features flow both
    det = ev.make_detector(detector, seed, device=device, verbose=not quiet, **kw)
    g_fit, tr_fit, va_fit = graph, tr, va
    n0 = graph.num_nodes[tgt]
    t1 = _time.perf_counter()
    aug = ev.make_augmenter(augment, seed)
    chooses = aug is not None and hasattr(aug, "choose")  # "auto": fits the detector itself, keeps the better
    if chooses:
        det, g_fit, _ = aug.choose(graph, tr, va, lambda: ev.make_detector(detector, seed, device=device,
                                                                           verbose=not quiet, **kw), target=tgt)
    elif aug is not None:
        g_fit, tr_fit = aug.augment(graph, tr)
        n_new = g_fit.num_nodes[tgt]
        if n_new > n0:
            va_fit = np.concatenate([va, np.zeros(n_new - n0, dtype=bool)])
    t_aug = _time.perf_counter() - t1
    if not chooses:
        det.fit(g_fit, tr_fit, va_fit)
    t_fit = _time.perf_counter() - t1 - t_aug
    # scores of the user's graph (no synthetic nodes), the cut chosen on its validation nodes
    scores = np.asarray(det.decision_function(graph), dtype=np.float64)
    threshold = best_f1_threshold(y[va], scores[va])
    det.threshold_ = threshold
    flags = scores >= threshold
    metrics = evaluate(y[va], scores[va])
    n_val, n_val_pos = int(va.sum()), int((y[va] == 1).sum())
    rule = f"flag = 1 where score >= {threshold!r} ({THRESHOLD_RULE}, {n_val:,} of them)"

    # ---- outputs: temp files, renamed at the end
    temps, renames = [], []
    try:
        if out is not None:
            tmp = _temp_beside(out, ".csv")
            temps.append(tmp)
            write_scores(tmp, ids, scores, flags)
            renames.append((tmp, out))
        if plot is not None:
            tmp = _temp_beside(plot, ".png")
            temps.append(tmp)
            plot_scores(tmp, scores, y, va, threshold,
                        f"{graph.name}: {detector} detector, {int(flags.sum()):,} of {n0:,} {tgt} nodes flagged\n"
                        f"validation AUC {metrics['auc']:.3f}, AP {metrics['ap']:.3f}; flag = score >= "
                        f"{threshold:.4g} (F1-best on validation)")
            renames.append((tmp, plot))
        if save_model is not None:
            info = {"tables": {"id": id, "label": label, "time": time, "weight": weight, "src": src, "dst": dst,
                               "exclude": list(exclude), "target": tgt,
                               "node_files": {t: os.path.basename(p) for t, p in node_files.items()},
                               "relations": {r: [s, d] for r, (s, d, _) in edge_files.items()}},
                    "validation": {**metrics, "n_val": n_val, "n_val_anomalies": n_val_pos, "seed": seed,
                                   "val_fraction": val_fraction},
                    "detector_name": detector, "augment": augment, "threshold_rule": THRESHOLD_RULE}
            det.save(save_model, info=info)
        _commit(temps, renames)
    finally:
        _cleanup(temps)

    total = _time.perf_counter() - t0
    if log is not None:
        p = lambda s: print(s, file=log, flush=True)  # noqa: E731
        p(f"graph: {_describe_graph(graph, label)}")
        p(f"target node type {tgt!r}: fit on {int(tr.sum()):,} labelled nodes ({int((y[tr] == 1).sum()):,} anomalies), "
          f"validated on {n_val:,} ({n_val_pos:,} anomalies); stratified split, seed {seed}")
        what = f"detector {detector}" + (f" (+ {augment} augmentation, {t_aug:.1f} s)" if aug is not None else "")
        p(f"{what}: fitted in {t_fit:.1f} s")
        p(f"validation: AUC {metrics['auc']:.4f}  AP {metrics['ap']:.4f}  Rec@k {metrics['rec_at_k']:.4f} "
          f"(k = {n_val_pos}, the validation anomalies)")
        p(rule)
        done = [f"{int(flags.sum()):,} of {n0:,} {tgt} nodes flagged"]
        if out is not None:
            done.append(f"scores written to {out} (columns {', '.join(OUTPUT_COLUMNS)}; rank 1 = most anomalous)")
        if save_model is not None:
            done.append(f"model saved to {save_model}")
        if plot is not None:
            done.append(f"plot written to {plot}")
        p("; ".join(done) + f"; {total:.1f} s in all ({t_read:.1f} s reading)")
    return {"metrics": metrics, "threshold": threshold, "rule": rule, "scores": scores, "flags": flags, "ids": ids,
            "graph": graph, "detector": det, "n_train": int(tr.sum()), "n_val": n_val, "seconds": total,
            "seconds_fit": t_fit, "seconds_read": t_read}


# ---- pygad score -----------------------------------------------------------------------------
def score_tables(model, node_specs, edge_specs=(), *, id: str | None = None, time: str | None = None,
                 weight: str | None = None, src: str | None = None, dst: str | None = None, device: str | None = None,
                 out=None, quiet: bool = False, log=None) -> dict:
    """Score the target nodes of new tables with a model saved by :func:`detect_tables`.

    The tables must have the model's feature schema: the same node types, relations (endpoints
    may be left out of ``REL=FILE``; they are taken from the model) and feature columns
    (extra columns are ignored). Column names default to the ones the model was fitted with.
    Labels, when the target table has the label column, are only used to report AUC/AP.

    Returns:
        A dict: ``scores``, ``flags``, ``ids``, ``threshold``, ``metrics`` (None without labels).
    """
    from ..data import tables as T
    from ..metrics import evaluate
    from .detectors import load_detector

    t0 = _time.perf_counter()
    log = log if log is not None else (None if quiet else sys.stdout)
    if not node_specs:
        raise PygadValueError("no node tables given (--nodes)")
    _require_tables()
    node_files = T.parse_node_specs(node_specs)
    det = load_detector(model, device=device)
    sc = det.schema_
    tab = dict(det.saved_info_.get("tables") or {})
    rel_ends = {r: (s, d) for s, r, d in sc["relations"]}
    specs = []
    for spec in edge_specs:  # REL=FILE: endpoints from the model
        rel, sep, rest = spec.partition("=")
        if sep and rel in rel_ends and not (len(rest.split(":", 2)) == 3 and not os.path.isfile(rest)):
            spec = f"{rel}={rel_ends[rel][0]}:{rel_ends[rel][1]}:{rest}"
        specs.append(spec)
    edge_files = T.parse_edge_specs(specs, list(node_files))
    inputs = list(node_files.values()) + [f for *_, f in edge_files.values()]
    for p in inputs:
        if not os.path.isfile(p):
            raise PygadFileError(f"{p}: no such file")
    if out is not None:
        check_output(out, "--out", inputs)
    unknown = [t for t in node_files if t not in sc["node_types"]]
    if unknown:
        raise PygadValueError(f"--nodes {unknown[0]}={node_files[unknown[0]]}: node type {unknown[0]!r} is not in the "
                              f"model (its node types: {', '.join(sc['node_types'])})")
    features = {t: (sc["features"].get(t) or []) for t in node_files}
    label = tab.get("label")
    bar = _bar(len(inputs), "reading tables", quiet)
    graph = T.read_graph(node_files, edge_files, progress=(lambda p: bar.update(1)) if bar else None,
                         id=id or tab.get("id", "id"), label=label, time=time or tab.get("time"),
                         weight=weight or tab.get("weight"), src=src or tab.get("src", "src"),
                         dst=dst or tab.get("dst", "dst"), target=sc["target"], features=features,
                         require_anomaly=False, name=os.path.basename(inputs[0]))
    if bar:
        bar.close()
    tgt = det.target_
    scores = np.asarray(det.decision_function(graph), dtype=np.float64)
    flags = scores >= det.threshold_
    ids = graph.node_ids[tgt]
    metrics = None
    if tgt in graph.y:
        yy = graph.y[tgt]
        lab = yy >= 0
        if (yy[lab] == 1).any() and (yy[lab] == 0).any():
            metrics = evaluate(yy[lab], scores[lab])
    temps = []
    try:
        if out is not None:
            tmp = _temp_beside(out, ".csv")
            temps.append(tmp)
            write_scores(tmp, ids, scores, flags)
            _commit(temps, [(tmp, out)])
    finally:
        _cleanup(temps)
    total = _time.perf_counter() - t0
    if log is not None:
        p = lambda s: print(s, file=log, flush=True)  # noqa: E731
        p(f"graph: {_describe_graph(graph, label)}")
        p(f"model {model}: {type(det).__name__} fitted on target node type {tgt!r}; flag = 1 where score >= "
          f"{det.threshold_!r} ({det.saved_info_.get('threshold_rule', 'the saved threshold')})")
        if metrics is not None:
            p(f"labelled nodes in these tables ({int((graph.y[tgt] >= 0).sum()):,}): AUC {metrics['auc']:.4f}  "
              f"AP {metrics['ap']:.4f}  Rec@k {metrics['rec_at_k']:.4f}")
        p(f"{int(flags.sum()):,} of {scores.shape[0]:,} {tgt} nodes flagged"
          + (f"; scores written to {out}" if out is not None else "") + f"; {total:.1f} s in all")
    return {"scores": scores, "flags": flags, "ids": ids, "threshold": float(det.threshold_), "metrics": metrics,
            "graph": graph, "detector": det, "seconds": total}


__all__ = ["detect_tables", "score_tables", "validation_split", "write_scores", "plot_scores", "check_output",
           "OUTPUT_COLUMNS", "THRESHOLD_RULE"]
