"""Metrics against hand-computed cases and against scikit-learn / explicit resampling on random data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score
from sklearn.utils import resample

from fakehr_orchestra.evaluation.metrics import (
    FAKE,
    REAL,
    UNPARSEABLE,
    _f,
    bootstrap_accuracy,
    classification,
    score_file,
    score_table,
    table_from_rows,
)
from fakehr_orchestra.evaluation.reader import EvalDataError


def rows_of(spec):
    """spec: (label, pred, mode, tokens, category)."""
    return [{"key": str(i), "label": lab, "pred": p, "mode": m, "response_tokens": t, "category": c}
            for i, (lab, p, m, t, c) in enumerate(spec)]


HAND = rows_of([
    ("fake", "fake", "think", 10, "a"),
    ("fake", None, None, 0, "a"),          # empty / unparseable answer on a fake image
    ("fake", "real", "no_think", 2, "b"),
    ("real", "fake", "no_think", 3, "b"),
    ("real", "real", "no_think", 4, "b"),
    ("real", None, None, 7, "a"),          # unparseable on a real image
])


def test_hand_computed_case():
    m = score_table(table_from_rows(HAND), samples=0)
    o = m["overall"]
    # TP=1 (fake->fake), FN=2 (fake->unparseable, fake->real), FP=1, TN=1, real->unparseable=1
    assert o["n"] == 6 and o["n_real"] == 3 and o["n_fake"] == 3
    assert o["accuracy"] == pytest.approx(2 / 6)
    assert o["fake_recall"] == pytest.approx(1 / 3)
    assert o["real_recall"] == pytest.approx(1 / 3)
    assert o["precision"] == pytest.approx(1 / 2)
    assert o["f1"] == pytest.approx(2 * 0.5 * (1 / 3) / (0.5 + 1 / 3))
    real_f1 = 2 * (1 / 2) * (1 / 3) / (1 / 2 + 1 / 3)  # real precision 1/2 (real->real 1 of 2 called real)
    assert o["macro_f1"] == pytest.approx((o["f1"] + real_f1) / 2)
    assert o["fpr_real"] == pytest.approx(1 / 3)  # not 1 - TNR (= 2/3): one real answer was unparseable
    assert o["unparseable"] == 2 and o["unparseable_rate"] == pytest.approx(2 / 6)
    assert o["confusion"]["matrix"] == [[1, 1, 1], [1, 1, 1]]
    # modes: think 1 (10 tok), no_think 3 (2, 3, 4), unknown 2 (0, 7)
    assert m["think_rate"] == pytest.approx(1 / 6)
    assert m["modes"]["no_think"]["mean_response_tokens"] == pytest.approx(3.0)
    assert m["modes"]["unknown"]["n"] == 2 and m["modes"]["unknown"]["accuracy"] == 0.0
    assert m["mean_response_tokens"] == pytest.approx(26 / 6)
    # per category: a = 1/3 right, b = 1/3 right... a: fake->fake ok, fake->None, real->None => 1/3
    cat = m["groups"]["category"]
    assert cat["values"]["a"]["accuracy"] == pytest.approx(1 / 3)
    assert cat["values"]["b"]["accuracy"] == pytest.approx(1 / 3)
    assert cat["values"]["a"]["think_rate"] == pytest.approx(1 / 3)
    assert cat["mean"]["accuracy"] == pytest.approx(1 / 3)


def test_per_category_mean_is_unweighted():
    spec = [("fake", "fake", "think", 1, "big")] * 9 + [("fake", "real", "think", 1, "big")] + \
           [("real", "fake", "think", 1, "small")]
    m = score_table(table_from_rows(rows_of(spec)), samples=0)
    assert m["overall"]["accuracy"] == pytest.approx(9 / 11)
    assert m["groups"]["category"]["mean"]["accuracy"] == pytest.approx((0.9 + 0.0) / 2)
    # a group with no fake images: its fake recall is undefined (null), and the mean skips it
    assert m["groups"]["category"]["values"]["small"]["fake_recall"] is None
    assert m["groups"]["category"]["mean"]["fake_recall"] == pytest.approx(0.9)


def test_all_unparseable_is_zero_accuracy_and_precision_undefined():
    m = score_table(table_from_rows(rows_of([("fake", None, None, 0, "a"), ("real", "", None, 0, "a"),
                                             ("real", "maybe", None, 0, "a")])), samples=0)
    o = m["overall"]
    assert o["accuracy"] == 0.0 and o["unparseable"] == 3
    assert o["precision"] is None  # no fake predictions: undefined, not 0
    assert o["fake_recall"] == 0.0 and o["real_recall"] == 0.0


@pytest.mark.parametrize("seed", range(5))
def test_against_sklearn_on_random_data(seed):
    rng = np.random.default_rng(seed)
    n = 500
    labels = rng.choice(["real", "fake"], n)
    preds = rng.choice(["real", "fake", None], n, p=[0.45, 0.45, 0.10])
    prob = rng.random(n)
    rows = [{"key": str(i), "label": lab, "pred": p, "prob_fake": float(q) if p else None,
             "category": f"c{i % 3}"} for i, (lab, p, q) in enumerate(zip(labels, preds, prob))]
    o = score_table(table_from_rows(rows), samples=0)["overall"]
    y = (labels == "fake").astype(int)
    yp = np.array([1 if p == "fake" else 0 if p == "real" else 2 for p in preds])
    # unparseable as a wrong class: for a real image it is "not real", for a fake image "not fake"
    assert o["accuracy"] == pytest.approx(accuracy_score(y, yp))
    assert o["fake_recall"] == pytest.approx(((yp == 1) & (y == 1)).sum() / (y == 1).sum())
    assert o["real_recall"] == pytest.approx(((yp == 0) & (y == 0)).sum() / (y == 0).sum())
    assert o["precision"] == pytest.approx(((yp == 1) & (y == 1)).sum() / (yp == 1).sum())
    # F1 and macro-F1 from binary sklearn on a mapping where unparseable is "the other label"
    fake_view = np.where(yp == 2, 1 - y, yp)  # unparseable = wrong: the opposite of the truth
    assert o["fake_recall"] == pytest.approx(recall_score(y, fake_view))
    assert o["real_recall"] == pytest.approx(recall_score(y, fake_view, pos_label=0))
    # precision/F1 differ from fake_view (unparseable is not a fake prediction), check against the definitions
    p, r = o["precision"], o["fake_recall"]
    assert o["f1"] == pytest.approx(2 * p * r / (p + r))
    assert o["macro_f1"] == pytest.approx(f1_score(y, yp, labels=[0, 1], average="macro"))
    has = np.array([pp is not None for pp in preds])
    assert o["auc"] == pytest.approx(roc_auc_score(y[has], prob[has]))
    assert o["auc_n"] == has.sum()
    # without unparseable answers everything equals plain binary sklearn
    rows2 = [dict(r, pred=r["pred"] or "real") for r in rows]
    o2 = score_table(table_from_rows(rows2), samples=0)["overall"]
    yp2 = np.array([1 if r["pred"] == "fake" else 0 for r in rows2])
    assert o2["precision"] == pytest.approx(precision_score(y, yp2))
    assert o2["f1"] == pytest.approx(f1_score(y, yp2))
    assert o2["real_recall"] == pytest.approx(recall_score(y, yp2, pos_label=0))


def test_bootstrap_matches_explicit_resampling():
    """The binomial shortcut gives the same percentile CI as resampling images with sklearn's resample."""
    rng = np.random.default_rng(1)
    correct = (rng.random(400) < 0.7).astype(int)
    explicit = [resample(correct, random_state=i).mean() for i in range(2000)]
    lo, hi = np.quantile(explicit, [0.025, 0.975])
    ci = bootstrap_accuracy([(int(correct.sum()), len(correct))], 20000, 0.95, seed=0)
    assert ci[0] == pytest.approx(lo, abs=0.01) and ci[1] == pytest.approx(hi, abs=0.01)
    assert ci[0] < correct.mean() < ci[1]
    # stratified: mean of two groups' accuracies
    a, b = correct[:100], correct[100:]
    explicit = [(resample(a, random_state=i).mean() + resample(b, random_state=10_000 + i).mean()) / 2
                for i in range(2000)]
    lo, hi = np.quantile(explicit, [0.025, 0.975])
    ci = bootstrap_accuracy([(int(a.sum()), 100), (int(b.sum()), 300)], 20000, 0.95, seed=0)
    assert ci[0] == pytest.approx(lo, abs=0.012) and ci[1] == pytest.approx(hi, abs=0.012)


def test_duplicate_rows_and_bad_labels_are_refused():
    with pytest.raises(EvalDataError, match="appears twice"):
        table_from_rows([{"key": "x", "label": "fake", "pred": "fake"}] * 2)
    with pytest.raises(EvalDataError, match="not real/fake"):
        table_from_rows([{"key": "x", "label": 1, "pred": "fake"}])


def test_score_file_refuses_unfinished_inference(tmp_path):
    pred = tmp_path / "p.jsonl"
    pred.write_text("".join(json.dumps(r) + "\n" for r in HAND[:4]) + '{"key": "torn", "lab')
    (tmp_path / "p.jsonl.meta.json").write_text(json.dumps({"rows": 6, "settings": {"model": "m"}}))
    with pytest.raises(EvalDataError, match="4 of 6 images answered"):
        score_file(pred)
    m = score_file(pred, samples=10, allow_incomplete=True)
    assert m["run"]["complete"] is False and m["overall"]["n"] == 4  # torn last line not counted


def classification_sklearn(y_true, y_pred):
    """The figures of `classification` by scikit-learn's functions (zero_division=nan), one call each."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_score, recall_score

    n = len(y_true)
    if n == 0:
        return {"n": 0}
    nan = float("nan")
    cm = confusion_matrix(y_true, y_pred, labels=[REAL, FAKE, UNPARSEABLE])[:2]
    n_real, n_fake = int(cm[0].sum()), int(cm[1].sum())

    def per_label(fn, label):
        return fn(y_true, y_pred, labels=[label], average="micro", zero_division=nan)

    return {
        "n": n, "n_real": n_real, "n_fake": n_fake,
        "accuracy": _f(accuracy_score(y_true, y_pred)),
        "real_recall": _f(per_label(recall_score, REAL)),  # TNR
        "fake_recall": _f(per_label(recall_score, FAKE)),  # TPR
        "precision": _f(per_label(precision_score, FAKE)),
        "f1": _f(per_label(f1_score, FAKE)),
        "macro_f1": _f(f1_score(y_true, y_pred, labels=[REAL, FAKE], average="macro", zero_division=nan)),
        "fpr_real": _f(cm[0, FAKE] / n_real if n_real else nan),
        "unparseable": int(cm[:, UNPARSEABLE].sum()),
        "unparseable_rate": _f(cm[:, UNPARSEABLE].sum() / n),
        "confusion": {"rows_true": ["real", "fake"], "cols_pred": ["real", "fake", "unparseable"],
                      "matrix": cm.tolist()},
    }


def test_classification_equals_scikit_learn_on_every_small_case():
    """Counts by bincount, definitions by scikit-learn (zero_division=nan): equal on random small cases, with
    one-label sets, all-unparseable answers and no prediction of a class among them (the undefined metrics)."""
    import warnings

    rng = np.random.default_rng(0)
    for case in range(1500):
        n = int(rng.integers(1, 12))
        y_true = rng.integers(0, 2, n).astype(np.int8)
        y_pred = rng.integers(0, 3, n).astype(np.int8)
        if case % 5 == 0:
            y_true[:] = rng.integers(0, 2)
        if case % 7 == 0:
            y_pred[:] = rng.integers(0, 3)
        ours = classification(y_true, y_pred)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = classification_sklearn(y_true, y_pred)
        assert ours.keys() == theirs.keys()
        for key, value in ours.items():
            if isinstance(value, float) or isinstance(theirs[key], float):
                assert (value is None) == (theirs[key] is None), (key, y_true, y_pred)
                assert value is None or value == pytest.approx(theirs[key], abs=1e-12), (key, y_true, y_pred)
            else:
                assert value == theirs[key], key


def test_fast_path_equals_the_careful_path(tmp_path):
    """`eval score` reads a file as `eval infer` writes it by msgspec structs (fastread.py); the table must be the
    careful path's (the one jsonl reader, dict rows) field for field, and a file it does not decide on goes there."""
    from fakehr_orchestra.evaluation.metrics import table_from_file
    from fakehr_orchestra.evaluation.reader import iter_predictions
    from fakehr_orchestra.evaluation.responses import prepare_rows

    rng = np.random.default_rng(1)
    rows = []
    for i in range(3000):
        row = {"file_path": f"/d/{i}.png", "label": ["fake", "real", "FAKE", " Real "][i % 4],
               "pred": [None, "fake", "real", "maybe", "Fake"][int(rng.integers(5))], "response": f"r{i}. fake",
               "mode": ["think", "no_think", None][i % 3], "response_tokens": int(rng.integers(0, 50)),
               "well_formed": bool(i % 2), "finish_reason": ["stop", "length"][i % 2 == 0 and i % 7 == 0]}
        if i % 2:
            row["key"] = row["file_path"]
        if i % 3:
            row["prob_fake"] = float(rng.random())
        if i % 5 == 0:
            row["category"] = f"c{i % 4}"
        if i % 11 == 0:
            row["error"] = "cannot read"
            row["generator"] = 7  # not a string: named by its text
        if i % 13 == 0:
            row["parsed_by"] = "fake_hr1"
        rows.append(row)
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "\n")  # a blank line too
    for protocol in (None, "fakevlm"):
        fast = table_from_file(path, protocol, 3)
        careful = table_from_rows(prepare_rows(iter_predictions(path)), protocol, 3)
        assert fast is not None
        for name in ("y_true", "y_pred", "mode", "tokens", "prob", "well_formed"):
            assert np.array_equal(getattr(fast, name), getattr(careful, name), equal_nan=True), name
        for name in ("errors", "parsed_here", "keys_sha1", "truncated", "keys", "protocol_guessed"):
            assert getattr(fast, name) == getattr(careful, name), name
        assert fast.groups.keys() == careful.groups.keys()
        for k in fast.groups:
            assert np.array_equal(fast.groups[k][0], careful.groups[k][0]) and fast.groups[k][1] == careful.groups[k][1]
        if protocol:
            assert np.array_equal(fast.protocol_pred, careful.protocol_pred)
    # what the fast path leaves to the careful one: a row naming no image, a row without pred, a torn last line
    for extra in ('{"label": "fake", "pred": "fake"}\n', '{"key": "x", "label": "fake"}\n', '{"key": "y", "lab'):
        odd = tmp_path / "odd.jsonl"
        odd.write_text(path.read_text() + extra)
        assert table_from_file(odd) is None
