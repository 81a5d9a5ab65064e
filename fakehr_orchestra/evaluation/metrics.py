"""Metrics from a predictions file. The definitions are scikit-learn's (computed here from the confusion counts,
checked against scikit-learn in the tests; AUC and AP by scikit-learn); this module decides what is counted.

Counting rules (the ones public eval scripts get wrong):
- every image counts: an unparseable or empty answer, or an image that failed to load, is a third prediction class
  ("unparseable"), so it is wrong for accuracy and recall and never silently dropped or guessed;
- beside those (lenient: unparseable is its own class, so it is never a false positive), `overall.strict` is the
  same metrics with every unparseable answer counted as the wrong class (a fake image called real, a real one fake):
  what a binary classifier forced to answer would score;
- labels and predictions are read as real/fake in any ASCII case ("FAKE" is fake, for `label` and `pred` alike);
- every image once: rows are identified by key / file_path / image / path, and rows naming no image by their whole
  content, so a file with its rows repeated is refused instead of counted twice;
- positive class = fake: fake recall = TPR, real recall = TNR, precision/F1 are for fake, macro-F1 over both labels;
  false-positive rate = real images called fake / real images (with unparseable answers this is not 1 - TNR);
- a metric with an empty denominator is null (undefined), not 0;
- AUC and AP (average precision, fake = positive) use the rows that have P(fake) (answers that parse); how many is
  reported next to them;
- with a published protocol (`protocols.py`, e.g. FakeVLM's parsing) the same classification metrics are computed
  a second time from the raw responses parsed as that paper's script parses them, under the protocol's name (never
  in place of the strict figures);
- per-group tables (source / category / generator) and their unweighted mean, as papers report them;
- accuracy confidence intervals: percentile bootstrap. Resampling n Bernoulli outcomes with replacement gives a
  correct-count distributed Binomial(n, k/n), so the bootstrap is drawn from that exactly (O(B), not O(B*n));
  the per-group mean is bootstrapped stratified (each group resampled on its own). Tests check both against
  explicit resampling.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..numbers import PROBABILITY, Rule, number_problem
from .reader import GROUP_KEYS, EvalDataError, iter_predictions, read_meta
from .responses import row_key

REAL, FAKE, UNPARSEABLE = 0, 1, 2
LABEL_CODE = {"real": REAL, "fake": FAKE}
MODES = ("think", "no_think", "unknown")  # unknown: no single think block (malformed / unparseable layout)
MODE_CODE = {"think": 0, "no_think": 1}


@dataclass
class Table:
    """Predictions as columns (int codes), cheap enough for millions of rows."""

    y_true: np.ndarray
    y_pred: np.ndarray
    mode: np.ndarray
    tokens: np.ndarray
    prob: np.ndarray  # nan where there is no P(fake)
    well_formed: np.ndarray
    paired: np.ndarray = field(default_factory=lambda: np.zeros(0))  # FakeVLM-R1: 1 fully paired, 0 not, nan n/a
    errors: int = 0
    parsed_here: int = 0  # rows whose raw response `eval score --answer-format` parsed
    keys_sha1: str = ""  # which images were scored (sha1 of the sorted row identities): `eval report` compares it
    truncated: int = 0
    groups: dict[str, tuple[np.ndarray, list[str]]] = field(default_factory=dict)  # codes (-1: absent), names
    keys: set[str] = field(default_factory=set, repr=False)  # the rows' identities (which images were scored)
    protocol: Optional[str] = None  # a published parsing protocol also applied (protocols.PROTOCOLS)
    protocol_pred: Optional[np.ndarray] = None  # REAL / FAKE as that protocol parses each response
    protocol_guessed: int = 0  # rows the protocol decided by a coin flip

    def __len__(self) -> int:
        return len(self.y_true)


def label_code(value: Any) -> Optional[int]:
    """REAL / FAKE for 'real' / 'fake' in any ASCII case (surrounding spaces allowed); None for anything else."""
    code = LABEL_CODE.get(value) if isinstance(value, str) else None  # the written form, looked up once per row
    if code is not None:
        return code
    if not isinstance(value, str) or not value.isascii():
        return None
    return LABEL_CODE.get(value.strip().lower())


def _identity(row: dict[str, Any]) -> tuple[str, str]:
    """(what, value) naming the image a row is about; a row naming none is identified by its content."""
    key = row_key(row)
    if key is not None:
        return "image", key
    content = json.dumps({k: v for k, v in row.items() if k != "line"}, sort_keys=True, default=str)
    return "row (it names no image: add key or file_path)", content


TOKENS = Rule(low=0, integer=True)


def _row_number(row: dict[str, Any], key: str, i: int, rule: Rule, missing: float) -> Any:
    """A row's number through the one range check (numbers.py); absent or null is `missing`; anything else that
    is not a number in range (text, a bool, inf, a probability of 7) is an error naming the row."""
    value = row.get(key)
    if value is None:
        return missing
    problem = number_problem(value, rule) if not isinstance(value, str) else f"{value!r} is text, not a number"
    if problem:
        raise EvalDataError([f"row {i + 1}: {key} {problem}"])
    return int(value) if rule.integer else float(value)


CHUNK = 1 << 16  # rows turned into columns at a time: list comprehensions per field, memory bounded


def table_from_rows(rows: Any, protocol: Optional[str] = None, protocol_seed: int = 0) -> Table:
    """Columns from prediction rows (dicts as `eval infer` writes them). With `protocol` (protocols.PROTOCOLS)
    every row's raw `response` is also parsed that way (its coin flips seeded with `protocol_seed`).

    Rows are taken CHUNK at a time and each field is read with one comprehension over the chunk (the per-row
    Python loop was most of `eval score`'s time); the slow, careful path runs only for rows that need it (a label
    in another case, a row naming no image by `key`, a repeated image)."""
    import itertools

    builder = _Builder(protocol, protocol_seed)
    rows = iter(rows)
    offset = 0
    while True:
        chunk = DictChunk(list(itertools.islice(rows, CHUNK)))
        if not len(chunk):
            break
        builder.add(chunk, offset)
        offset += len(chunk)
    return builder.table()


def table_from_file(path: str | Path, protocol: Optional[str] = None, protocol_seed: int = 0) -> Optional[Table]:
    """The table of a predictions file as `eval infer` writes it, by the fast path (fastread.py); None when the
    file needs the careful one (`table_from_rows` over `iter_predictions`)."""
    from .fastread import read_chunks

    builder = _Builder(protocol, protocol_seed)
    if read_chunks(path, protocol is not None, builder.add) is None:
        return None
    return builder.table()


class _Builder:
    """Columns filled a chunk at a time (`add`), then the Table (`table`)."""

    def __init__(self, protocol: Optional[str], protocol_seed: int) -> None:
        from .protocols import PROTOCOLS, FakeVLMParser

        if protocol is not None and protocol not in PROTOCOLS:
            raise EvalDataError([f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}"])
        self.protocol = protocol
        self.paper = FakeVLMParser(protocol_seed) if protocol == "fakevlm" else None
        self.cols: dict[str, list[Any]] = {name: [] for name in ("y_true", "y_pred", "mode", "tokens", "prob", "wf",
                                                                  "paper", "paired")}
        self.group_codes: dict[str, list[int]] = {k: [] for k in GROUP_KEYS}
        self.group_names: dict[str, dict[str, int]] = {k: {} for k in GROUP_KEYS}
        self.seen: list[str] = []  # row identities in order (checked for repeats once, at the end)
        self.unnamed: dict[str, str] = {}  # identities of rows that name no image -> how to call them
        self.counts = {"errors": 0, "truncated": 0, "parsed_here": 0}

    def add(self, chunk: Any, offset: int) -> None:
        _add_chunk(chunk, offset, self.cols, self.group_codes, self.group_names, self.seen, self.unnamed,
                   self.counts, self.paper, self.protocol)

    def table(self) -> Table:
        unique = set(self.seen)
        if len(unique) != len(self.seen):  # a repeated image: name the first repeat and where it was first
            first: dict[str, int] = {}
            for number, key in enumerate(self.seen, 1):
                if key in first:
                    shown = key if len(key) <= 80 else key[:77] + "..."
                    raise EvalDataError([f"row {number}: {self.unnamed.get(key, 'image')} {shown} appears twice "
                                         f"(first as row {first[key]}); a predictions file has one row per image"])
                first[key] = number
        return _table(self.cols, self.counts, unique, self.paper, self.protocol, self.group_names, self.group_codes)


def _table(cols: dict[str, list[Any]], counts: dict[str, int], seen: set[str], paper: Any,
           protocol: Optional[str], group_names: dict[str, dict[str, int]],
           group_codes: dict[str, list[int]]) -> Table:
    groups = {k: (np.asarray(group_codes[k], dtype=np.int32), list(group_names[k]))
              for k in GROUP_KEYS if group_names[k]}
    return Table(np.asarray(cols["y_true"], np.int8), np.asarray(cols["y_pred"], np.int8),
                 np.asarray(cols["mode"], np.int8), np.asarray(cols["tokens"], np.int64),
                 np.asarray(cols["prob"], np.float64), np.asarray(cols["wf"], bool),
                 paired=np.asarray(cols["paired"], np.float64), errors=counts["errors"],
                 truncated=counts["truncated"], parsed_here=counts["parsed_here"],
                 keys_sha1=_sha1_lines(sorted(seen)), groups=groups, keys=seen, protocol=protocol,
                 protocol_pred=np.asarray(cols["paper"], np.int8) if paper is not None else None,
                 protocol_guessed=paper.guessed if paper is not None else 0)


def _codes(values: list[Any], first_row: int, what: str) -> list[int]:
    """REAL / FAKE per value; the written forms by one lookup, the others through `label_code`. For `what` =
    "label" anything else is an error naming the row; for "pred" it is UNPARSEABLE."""
    get = LABEL_CODE.get
    codes = [get(v, -1) if v.__class__ is str else -1 for v in values]
    i = -1
    while True:  # visit only the rows left undecided (list.index runs in C)
        try:
            i = codes.index(-1, i + 1)
        except ValueError:
            return codes
        slow = label_code(values[i])
        if slow is None and what == "label":
            raise EvalDataError([f"row {first_row + i}: label {values[i]!r} is not real/fake"])
        codes[i] = UNPARSEABLE if slow is None else slow  # None / junk: unparseable, counted wrong


def _group_codes(values: list[Any], names: dict[str, int]) -> list[int]:
    """Codes of a group's values (-1: absent), new names numbered in order of first appearance: one dict lookup
    per row, the names settled once per distinct value."""
    try:
        distinct = dict.fromkeys(values)
    except TypeError:  # an unhashable value (a list as category): each one by its text
        return [-1 if v is None or v == "" else names.setdefault(str(v), len(names)) for v in values]
    lookup: dict[Any, int] = {}
    for v in distinct:
        lookup[v] = -1 if v is None or v == "" else names.setdefault(v if v.__class__ is str else str(v), len(names))
    return [lookup[v] for v in values]


ABSENT = object()  # a field the row does not have (told apart from null where that matters)


class DictChunk:
    """Rows as dicts (what `eval infer` writes, decoded): a field's values across the chunk, and one row."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def values(self, name: str, default: Any = None) -> list[Any]:
        return [r.get(name, default) for r in self.rows]

    def row(self, i: int) -> dict[str, Any]:
        return self.rows[i]


def _add_chunk(chunk: Any, offset: int, cols: dict[str, list[Any]],
               group_codes: dict[str, list[int]], group_names: dict[str, dict[str, int]], seen: list[str],
               unnamed: dict[str, str], counts: dict[str, int], paper: Any, protocol: Optional[str]) -> None:
    """Append a chunk's columns (`chunk`: a DictChunk, or fastread.StructChunk with the same two methods)."""
    first = offset + 1  # 1-based row number of chunk[0]
    y_true = _codes(chunk.values("label"), first, "label")
    keys: list[Any] = chunk.values("key")
    for i, key in enumerate(keys):
        if key.__class__ is not str or not key:
            what, keys[i] = _identity(chunk.row(i))
            if what != "image":
                unnamed[keys[i]] = what
    seen += keys
    if paper is not None:
        errors = chunk.values("error")
        for i, response in enumerate(chunk.values("response")):
            if not isinstance(response, str) and not errors[i]:
                raise EvalDataError([f"row {first + i}: no raw 'response' text, which --protocol {protocol} parses "
                                     f"(score a file written by `eval infer`, or rows with a 'response')"])
            cols["paper"].append(LABEL_CODE[paper(response)])
    cols["y_true"] += y_true
    cols["y_pred"] += _codes(chunk.values("pred"), first, "pred")
    mode_get = MODE_CODE.get
    cols["mode"] += [mode_get(m, 2) for m in chunk.values("mode")]
    toks, probs = chunk.values("response_tokens"), chunk.values("prob_fake")
    # the one range check (numbers.py), row by row only when a chunk holds a value outside the plain fast case
    if not all(t is None or (t.__class__ is int and t >= 0) for t in toks):
        for j, t in enumerate(toks):
            _row_number({"response_tokens": t}, "response_tokens", offset + j, TOKENS, 0.0)
    if not all(p is None or ((p.__class__ is float or p.__class__ is int) and 0.0 <= p <= 1.0) for p in probs):
        for j, p in enumerate(probs):
            _row_number({"prob_fake": p}, "prob_fake", offset + j, PROBABILITY, math.nan)
    cols["tokens"] += [int(t or 0) for t in toks]
    cols["prob"] += [math.nan if p is None else float(p) for p in probs]
    cols["wf"] += [bool(w) for w in chunk.values("well_formed")]
    cols["paired"] += [math.nan if p is None else float(bool(p)) for p in chunk.values("paired")]
    counts["errors"] += sum(1 for e in chunk.values("error") if e is not None)
    counts["truncated"] += sum(1 for f in chunk.values("finish_reason") if f == "length")
    counts["parsed_here"] += sum(1 for p in chunk.values("parsed_by", ABSENT) if p is not ABSENT)
    for k in GROUP_KEYS:
        group_codes[k] += _group_codes(chunk.values(k), group_names[k])


def _sha1_lines(keys: list[str]) -> str:
    import hashlib

    return hashlib.sha1("\n".join(keys).encode()).hexdigest()


def _f(x: Any) -> Optional[float]:
    """JSON-safe float: nan (undefined) -> None."""
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


def confusion(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """The 2 x 3 counts (rows: true real / fake; columns: predicted real / fake / unparseable), by one bincount."""
    flat = y_true.astype(np.int64) * 3 + y_pred.astype(np.int64)
    return np.bincount(flat, minlength=9)[:9].reshape(3, 3)[:2]


def classification(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """Accuracy, recalls, precision, F1, macro-F1, FPR and the confusion matrix, from the confusion counts.

    The definitions are scikit-learn's with `zero_division=nan` (recall = TP / support, precision = TP /
    predicted, F1 = 2TP / (2TP + FP + FN), macro-F1 the mean over real and fake of the defined ones); computed
    from one bincount rather than seven scikit-learn calls per group, because `eval score` runs them for every
    group of a million rows. tests/evaluation/test_metrics.py checks them against scikit-learn."""
    n = len(y_true)
    if n == 0:
        return {"n": 0}
    cm = confusion(y_true, y_pred)
    n_real, n_fake = int(cm[0].sum()), int(cm[1].sum())

    def ratio(num: float, den: float) -> Optional[float]:
        return float(num) / float(den) if den else None

    def f1_of(label: int) -> Optional[float]:
        tp = cm[label, label]
        return ratio(2 * tp, cm[:, label].sum() + cm[label].sum())  # 2TP / (predicted + support)

    f1s = [f for f in (f1_of(REAL), f1_of(FAKE)) if f is not None]
    return {
        "n": n, "n_real": n_real, "n_fake": n_fake,
        "accuracy": ratio(cm[0, REAL] + cm[1, FAKE], n),
        "real_recall": ratio(cm[0, REAL], n_real),  # TNR
        "fake_recall": ratio(cm[1, FAKE], n_fake),  # TPR
        "precision": ratio(cm[1, FAKE], cm[:, FAKE].sum()),
        "f1": f1_of(FAKE),
        "macro_f1": float(np.mean(f1s)) if f1s else None,
        "fpr_real": ratio(cm[0, FAKE], n_real),
        "unparseable": int(cm[:, UNPARSEABLE].sum()),
        "unparseable_rate": ratio(cm[:, UNPARSEABLE].sum(), n),
        "confusion": {"rows_true": ["real", "fake"], "cols_pred": ["real", "fake", "unparseable"],
                      "matrix": cm.tolist()},
    }


def auc(y_true: np.ndarray, prob: np.ndarray) -> dict[str, Any]:
    """ROC AUC and average precision (fake = positive) from P(fake), over the rows that have it; both are
    undefined (null) unless those rows hold both labels."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    has = ~np.isnan(prob)
    n = int(has.sum())
    if n == 0 or len(np.unique(y_true[has])) < 2:
        return {"auc": None, "ap": None, "auc_n": n}
    return {"auc": _f(roc_auc_score(y_true[has], prob[has])),
            "ap": _f(average_precision_score(y_true[has], prob[has], pos_label=FAKE)), "auc_n": n}


def bootstrap_accuracy(correct_by_group: list[tuple[int, int]], samples: int, confidence: float,
                       seed: int) -> Optional[list[float]]:
    """Percentile CI of the mean accuracy over groups [(correct, n), ...] (one group: plain accuracy)."""
    groups = [(k, n) for k, n in correct_by_group if n > 0]
    if samples <= 0 or not groups:
        return None
    rng = np.random.default_rng(seed)
    draws = np.zeros(samples)
    for k, n in groups:
        draws += rng.binomial(n, k / n, size=samples) / n
    draws /= len(groups)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(draws, [alpha, 1 - alpha])
    return [float(lo), float(hi)]


def paired_share(table: Table, mask: Optional[np.ndarray] = None) -> Optional[float]:
    """FakeVLM-R1: share of answers whose reasoning is fully paired ([Why fake] each followed by [If real]), by the
    method's own pairing parser (answers.pairing); over the rows that carry the flag, None when none does."""
    paired = table.paired if len(table.paired) == len(table) else np.full(len(table), np.nan)
    if mask is not None:
        paired = paired[mask]
    known = paired[~np.isnan(paired)]
    return _f(known.mean()) if len(known) else None


def mode_stats(table: Table, mask: Optional[np.ndarray] = None) -> dict[str, Any]:
    """Think-rate and mean response tokens per mode (Fake-HR1's efficiency claim), accuracy per mode."""
    mode, tokens = table.mode, table.tokens
    correct = table.y_true == table.y_pred
    if mask is not None:
        mode, tokens, correct = mode[mask], tokens[mask], correct[mask]
    n = len(mode)
    out: dict[str, Any] = {"think_rate": _f(np.mean(mode == 0)) if n else None,
                           "mean_response_tokens": _f(tokens.mean()) if n else None,
                           "paired_share": paired_share(table, mask), "modes": {}}
    for code, name in enumerate(MODES):
        sel = mode == code
        m = int(sel.sum())
        out["modes"][name] = {"n": m, "rate": _f(m / n) if n else None,
                              "mean_response_tokens": _f(tokens[sel].mean()) if m else None,
                              "accuracy": _f(correct[sel].mean()) if m else None}
    return out


def group_breakdown(table: Table, key: str, samples: int, confidence: float, seed: int) -> dict[str, Any]:
    codes, names = table.groups[key]
    values: dict[str, Any] = {}
    correct = table.y_true == table.y_pred
    counts = []
    for code, name in enumerate(names):
        sel = codes == code
        stats = classification(table.y_true[sel], table.y_pred[sel])
        stats.pop("confusion")
        modes = mode_stats(table, sel)
        stats.update(think_rate=modes["think_rate"], mean_response_tokens=modes["mean_response_tokens"])
        if modes["paired_share"] is not None:
            stats["paired_share"] = modes["paired_share"]
        if table.protocol_pred is not None:
            paper = classification(table.y_true[sel], table.protocol_pred[sel])
            stats.update({f"{table.protocol}_{m}": paper.get(m) for m in ("accuracy", "real_recall", "fake_recall")})
        values[name] = stats
        counts.append((int(correct[sel].sum()), int(sel.sum())))
    missing = int((codes < 0).sum())

    def mean_of(metric: str) -> Optional[float]:
        vals = [v[metric] for v in values.values() if v.get(metric) is not None]
        return _f(np.mean(vals)) if vals else None

    means = ["accuracy", "real_recall", "fake_recall", "macro_f1", "think_rate"]
    if table.protocol_pred is not None:
        means += [f"{table.protocol}_{m}" for m in ("accuracy", "real_recall", "fake_recall")]
    return {"values": values, "rows_without_value": missing,
            "mean": {m: mean_of(m) for m in means},
            "mean_accuracy_ci": bootstrap_accuracy(counts, samples, confidence, seed)}


def score_table(table: Table, samples: int = 1000, confidence: float = 0.95, seed: int = 0) -> dict[str, Any]:
    """Every metric of one run, as a JSON-ready dict."""
    if len(table) == 0:
        raise EvalDataError(["no predictions to score"])
    overall = classification(table.y_true, table.y_pred)
    overall.update(auc(table.y_true, table.prob))
    strict_pred = np.where(table.y_pred == UNPARSEABLE, 1 - table.y_true, table.y_pred).astype(np.int8)
    strict = classification(table.y_true, strict_pred)
    strict["counting"] = "strict: an unparseable answer counts as the wrong class (fake called real, real called fake)"
    overall["counting"] = "lenient: an unparseable answer is a third class (wrong, but never a false positive)"
    overall["strict"] = strict
    if table.protocol_pred is not None:
        from .protocols import FAKEVLM_COUNTING

        paper = classification(table.y_true, table.protocol_pred)
        paper.update(protocol=table.protocol, guessed=table.protocol_guessed, counting=FAKEVLM_COUNTING,
                     seed=seed)
        overall[table.protocol] = paper
    correct = int((table.y_true == table.y_pred).sum())
    overall["accuracy_ci"] = bootstrap_accuracy([(correct, len(table))], samples, confidence, seed)
    overall.update(errors=table.errors, truncated=table.truncated,
                   well_formed_rate=_f(table.well_formed.mean()))
    modes = mode_stats(table)
    edges = np.histogram_bin_edges(table.tokens, bins=min(30, max(1, int(table.tokens.max()) + 1)))
    hist = {name: np.histogram(table.tokens[table.mode == code], bins=edges)[0].tolist()
            for code, name in enumerate(MODES)}
    return {
        "overall": overall,
        "think_rate": modes["think_rate"], "mean_response_tokens": modes["mean_response_tokens"],
        **({"paired_share": modes["paired_share"]} if modes["paired_share"] is not None else {}),
        "modes": modes["modes"],
        "groups": {k: group_breakdown(table, k, samples, confidence, seed) for k in table.groups},
        "response_tokens_histogram": {"edges": edges.tolist(), "counts": hist},
        "bootstrap": {"samples": samples, "confidence": confidence, "seed": seed,
                      "method": "percentile; binomial draws = exact resampling of per-image correctness"},
    }


def score_file(path: str | Path, samples: Optional[int] = None, confidence: Optional[float] = None,
               seed: Optional[int] = None, allow_incomplete: bool = False, answer_format: Optional[str] = None,
               response_prefix: Optional[str] = None, data: Optional[str | Path] = None,
               convention: str = "text", consistency: Optional[str | Path] = None,
               protocol: Optional[str] = None) -> dict[str, Any]:
    """Score a predictions file; refuse one that inference has not finished (unless allowed, and then say so).

    Complete means: as many rows as `eval infer` recorded in the `.meta.json` beside the file, or as the eval set
    given with `data` has images. Without a `.meta.json` nothing says a torn last line will be rewritten, so a
    broken last line is an error like any other. Rows with a raw `response` and no parse are parsed with
    `answer_format` (see `responses.py`); if none of them parses, that is an error (wrong format?), not 0%.

    Bootstrap settings left as None come from the recipe's eval section as `eval infer` recorded it beside the
    predictions, else 1000 resamples, 95%, seed 0. `consistency`: an `eval consistency` file for these predictions
    (the critic's scores; evaluation/consistency.py), folded in as `consistency` (overall and per group).
    `protocol`: also score the raw responses as a published script parses them (protocols.py), under its name;
    its coin flips use the same seed as the bootstrap."""
    from .responses import eval_labels, prepare_rows

    path = Path(path)
    if not path.is_file():
        if Path(path).exists() and not Path(path).is_dir():
            raise EvalDataError([f"{path}: not a regular file (a FIFO, socket or device): not read"])
        raise EvalDataError([f"{path}: predictions file not found (write it with `eval infer`)"])
    meta = read_meta(path)
    labels = eval_labels(data, convention) if data is not None else None
    recorded = (meta or {}).get("settings") or {}
    samples = samples if samples is not None else recorded.get("bootstrap_samples", 1000)
    confidence = confidence if confidence is not None else recorded.get("confidence", 0.95)
    seed = seed if seed is not None else recorded.get("seed", 0)
    table = table_from_file(path, protocol, seed) if answer_format is None and labels is None else None
    if table is None:  # rows that need care (or a parse, or labels joined): the one jsonl reader, row checks
        rows = iter_predictions(path, torn_tail=meta is not None)
        table = table_from_rows(prepare_rows(rows, answer_format, response_prefix, labels, data), protocol, seed)
    if table.parsed_here and table.parsed_here == len(table) and not (table.y_pred != UNPARSEABLE).any():
        raise EvalDataError([f"{path}: none of the {len(table)} responses parses as {answer_format} (every answer "
                             f"would count wrong); check --answer-format (fake_hr1: '<think>...</think>' then "
                             f"real|fake; fakevlm_r1: '<answer>Real|Fake</answer>') and --response-prefix, and "
                             f"look at a few 'response' values"])
    expected = len(labels) if labels is not None else (meta.get("rows") if meta else None)
    complete = expected is None or len(table) == expected
    if not complete and not allow_incomplete:
        fix = ("rerun `eval infer` with the same --out to finish (it resumes)" if labels is None else
               f"answer every image of {data}")
        raise EvalDataError([f"{path}: {len(table)} of {expected} images answered; {fix}, or pass "
                             f"--allow-incomplete"])
    result = score_table(table, samples, confidence, seed)
    if consistency is not None:
        from . import consistency as cons
        cons.attach(result, cons.summarize(cons.read(consistency), set(table.keys), samples, confidence, seed))
    result["run"] = {"predictions": str(path), "rows": len(table), "expected_rows": expected,
                     "complete": complete, "settings": meta.get("settings") if meta else None,
                     "eval_set": str(data) if data is not None else ((meta or {}).get("data") or None),
                     "answer_format": answer_format if table.parsed_here else None,
                     "parsed_here": table.parsed_here, "keys_sha1": table.keys_sha1, "protocol": protocol}
    return result
