"""Metrics against scikit-learn; absent classes; fold summaries."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from emovox.errors import ConfigError
from emovox.evaluation.metrics import SUMMARY_METRICS, compute_metrics, confusion_matrix, summarize_folds


@st.composite
def predictions(draw):
    n_classes = draw(st.integers(2, 8))
    n = draw(st.integers(1, 150))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, n_classes, n)
    # Mix right and wrong answers so every regime (perfect, chance, absent) shows up.
    y_pred = np.where(rng.random(n) < draw(st.floats(0, 1)), y_true, rng.integers(0, n_classes, n))
    return y_true, y_pred, n_classes


@settings(max_examples=150, deadline=None)
@given(predictions())
def test_metrics_match_sklearn(data):
    y_true, y_pred, n_classes = data
    classes = [f"c{i}" for i in range(n_classes)]
    m = compute_metrics(y_true, y_pred, classes=classes)
    present = sorted(set(y_true.tolist()))  # UAR / macro over classes present in the truth
    all_labels = list(range(n_classes))
    kw = {"zero_division": 0}
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert m["uar"] == pytest.approx(skm.recall_score(y_true, y_pred, labels=present, average="macro", **kw))
    with warnings.catch_warnings():  # sklearn warns when predictions hold classes absent from the truth
        warnings.simplefilter("ignore")
        assert m["uar"] == pytest.approx(skm.balanced_accuracy_score(y_true, y_pred))
    for avg, labels in (("macro", present), ("weighted", all_labels)):
        assert m[f"{avg}_precision"] == pytest.approx(
            skm.precision_score(y_true, y_pred, labels=labels, average=avg, **kw)
        )
        assert m[f"{avg}_recall"] == pytest.approx(skm.recall_score(y_true, y_pred, labels=labels, average=avg, **kw))
        assert m[f"{avg}_f1"] == pytest.approx(skm.f1_score(y_true, y_pred, labels=labels, average=avg, **kw))
        assert m[f"{avg}_f2"] == pytest.approx(
            skm.fbeta_score(y_true, y_pred, beta=2, labels=labels, average=avg, **kw)
        )
    assert m["confusion"] == skm.confusion_matrix(y_true, y_pred, labels=all_labels).tolist()
    recall = skm.recall_score(y_true, y_pred, labels=all_labels, average=None, **kw)
    for i, c in enumerate(classes):
        expected = recall[i] if i in present else None
        assert m["per_class"][c]["recall"] == (pytest.approx(expected) if expected is not None else None)
        assert m["per_class"][c]["support"] == int((y_true == i).sum())


def test_absent_class_is_excluded_from_uar_and_reported_as_none():
    # Like TurEV-DB actor 1157: only angry and sad in the test fold.
    classes = ["angry", "calm", "happy", "sad"]
    y_true = np.array([0, 0, 0, 0, 3, 3])
    y_pred = np.array([0, 0, 2, 1, 3, 3])
    m = compute_metrics(y_true, y_pred, classes=classes)
    assert m["uar"] == pytest.approx((0.5 + 1.0) / 2)
    assert m["classes_present"] == ["angry", "sad"]
    assert m["per_class"]["calm"]["recall"] is None
    assert m["per_class"]["calm"]["precision"] == 0.0  # predicted once, never right
    assert m["per_class"]["calm"]["predicted"] == 1
    assert m["accuracy"] == pytest.approx(4 / 6)


def test_perfect_and_chance_regimes():
    y = np.arange(4).repeat(5)
    perfect = compute_metrics(y, y, classes="abcd")
    assert perfect["uar"] == perfect["accuracy"] == perfect["macro_f1"] == 1.0
    constant = compute_metrics(y, np.zeros_like(y), classes="abcd")
    assert constant["uar"] == pytest.approx(0.25)
    assert constant["per_class"]["b"]["precision"] == 0.0  # in the truth, never predicted
    assert constant["per_class"]["a"]["precision"] == pytest.approx(0.25)


def test_confusion_matrix_has_full_shape_even_with_missing_classes():
    cm = confusion_matrix(np.array([0, 0]), np.array([0, 1]), n_classes=5)
    assert cm.shape == (5, 5) and cm.sum() == 2 and cm[0, 1] == 1


def test_metric_input_errors():
    with pytest.raises(ConfigError, match="empty test set"):
        compute_metrics(np.array([], dtype=int), np.array([], dtype=int), classes=["a"])
    with pytest.raises(ConfigError, match="outside 0..1"):
        compute_metrics(np.array([0, 2]), np.array([0, 1]), classes=["a", "b"])
    with pytest.raises(ConfigError, match="equal length"):
        compute_metrics(np.array([0, 1]), np.array([0]), classes=["a", "b"])
    with pytest.raises(ConfigError, match="integer class indices"):
        compute_metrics(np.array([0.0]), np.array([0.0]), classes=["a"])


def test_summarize_folds_mean_and_sample_std():
    folds = [compute_metrics(np.array([0, 1]), np.array(p), classes="ab") for p in ([0, 1], [0, 0], [1, 0])]
    summary = summarize_folds(folds)
    assert set(summary) == set(SUMMARY_METRICS)
    assert summary["uar"]["mean"] == pytest.approx(np.mean([1.0, 0.5, 0.0]))
    assert summary["uar"]["std"] == pytest.approx(np.std([1.0, 0.5, 0.0], ddof=1))
    assert summary["uar"]["n_folds"] == 3
    assert summarize_folds(folds[:1])["uar"]["std"] == 0.0
