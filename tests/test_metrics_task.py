"""Task metrics against reference computations (scikit-learn where installed, else by hand), and
their choice by task and by name."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import zoo
from zoo.finetune import fit
from zoo.finetune.task_metrics import (
    ClassReport,
    EntityF1,
    ErrorRate,
    Regression,
    TopKAccuracy,
    build_metrics,
    default_metric_names,
    edit_distance,
    entities,
)


def _batches(metric, output, target, parts=3):
    """Feed the data in several batches, as an epoch does."""
    metric.reset()
    for out, tgt in zip(output.chunk(parts), target.chunk(parts)):
        metric.update(out, tgt)
    return metric.compute()


def _scores(n=90, classes=7, seed=0):
    generator = torch.Generator().manual_seed(seed)
    target = torch.randint(0, classes, (n,), generator=generator)
    output = torch.randn(n, classes, generator=generator) + 1.5 * nn.functional.one_hot(target, classes)
    return output, target


def test_top_k_accuracy_matches_a_count_of_true_classes_among_the_k_best():
    output, target = _scores()
    for k in (1, 3, 5):
        expected = sum(int(t in o.topk(k).indices.tolist()) for o, t in zip(output, target)) / len(target)
        assert _batches(TopKAccuracy(k), output, target)[f"top{k}_accuracy"] == pytest.approx(expected)
    sklearn = pytest.importorskip("sklearn.metrics")
    assert _batches(TopKAccuracy(3), output, target)["top3_accuracy"] == pytest.approx(
        sklearn.top_k_accuracy_score(target.numpy(), output.numpy(), k=3, labels=list(range(7))))


def test_macro_f1_and_per_class_scores_match_scikit_learn():
    sklearn = pytest.importorskip("sklearn.metrics")
    output, target = _scores()
    target[target == 6] = 5  # class 6 never true; predictions may still name it
    result = _batches(ClassReport(), output, target)
    predicted = output.argmax(-1).numpy()
    assert result["macro_f1"] == pytest.approx(sklearn.f1_score(target.numpy(), predicted, average="macro",
                                                                zero_division=0))
    precision, recall, f1, support = sklearn.precision_recall_fscore_support(
        target.numpy(), predicted, labels=list(range(7)), zero_division=0)
    per_class = result["per_class"]
    assert per_class["precision"] == pytest.approx(precision.tolist())
    assert per_class["recall"] == pytest.approx(recall.tolist())
    assert per_class["f1"] == pytest.approx(f1.tolist())
    assert per_class["support"] == support.tolist()


def test_per_token_classification_leaves_unlabelled_tokens_out():
    output = torch.tensor([[[2.0, 0.0], [0.0, 2.0], [2.0, 0.0]]])  # predicts 0, 1, 0
    target = torch.tensor([[0, 0, -100]])
    result = _batches(ClassReport(), output, target, parts=1)
    assert result["per_class"]["support"] == [2, 0]
    assert result["per_class"]["recall"] == [0.5, 0.0]
    assert _batches(TopKAccuracy(1), output, target, parts=1)["top1_accuracy"] == 0.5


def test_entities_are_read_as_seqeval_reads_bio_tags():
    tags = ["B-PER", "I-PER", "O", "I-LOC", "I-LOC", "B-LOC", "B-ORG", "I-PER", "O"]
    assert entities(tags) == {("PER", 0, 1), ("LOC", 3, 4), ("LOC", 5, 5), ("ORG", 6, 6), ("PER", 7, 7)}
    assert entities(["O", "O"]) == set()
    assert entities(["B-X", "I-X"]) == {("X", 0, 1)}  # an entity at the end of the sentence


def test_entity_f1_counts_exact_spans_over_labelled_first_subwords():
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    truth = [[1, 2, 0, 3, -100, 4], [3, 4, 4, 0, 1, -100]]   # PER(0-1) LOC(3-4) | LOC(0-2) PER(4)
    guess = [[1, 2, 0, 3, 0, 0], [3, 4, 0, 0, 1, 0]]          # PER(0-1) LOC(3)   | LOC(0-1) PER(4)
    output = nn.functional.one_hot(torch.tensor(guess), len(tags)).float()
    result = _batches(EntityF1(tags), output, torch.tensor(truth), parts=2)
    # 4 true entities, 4 predicted, 2 the same (PER 0-1 in the first, PER 4 in the second)
    assert result == {"entity_f1": pytest.approx(0.5), "entity_precision": 0.5, "entity_recall": 0.5}


def test_error_rates_add_up_edits_over_reference_lengths():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("the cat sat".split(), "the cat sat down".split()) == 1
    references, hypotheses = ["the cat sat", "on a mat"], ["the cat sat down", "on mat"]
    for unit, expected in (("word", (1 + 1) / (3 + 3)), ("char", (5 + 2) / (11 + 8))):
        metric = ErrorRate(unit, decode=lambda output: hypotheses)
        metric.update(torch.zeros(2, 1, 1), references)
        assert metric.compute()[metric.name] == pytest.approx(expected)
    jiwer = pytest.importorskip("jiwer")
    metric = ErrorRate("word", decode=lambda output: hypotheses)
    metric.update(torch.zeros(2, 1, 1), references)
    assert metric.compute()["wer"] == pytest.approx(jiwer.wer(references, hypotheses))


def test_error_rate_decodes_ctc_greedily_and_reads_index_targets():
    vocab = ["<blank>", "|", "A", "B"]
    path = [2, 2, 0, 3, 1, 1, 0, 2, 0]  # "AB A"
    output = nn.functional.one_hot(torch.tensor([path]), 4).float()
    target = torch.tensor([[2, 3, 1, 3, -100]])  # "AB B", padded
    wer, cer = ErrorRate("word", vocab), ErrorRate("char", vocab)
    for metric in (wer, cer):
        metric.update(output, target)
    assert wer.compute()["wer"] == pytest.approx(1 / 2) and cer.compute()["cer"] == pytest.approx(1 / 4)


def test_regression_metrics_match_scikit_learn_per_output_averaged():
    sklearn = pytest.importorskip("sklearn.metrics")
    generator = torch.Generator().manual_seed(1)
    target = torch.randn(60, 2, generator=generator) * torch.tensor([1.0, 5.0]) + 3
    output = target + 0.5 * torch.randn(60, 2, generator=generator)
    result = _batches(Regression(), output, target, parts=4)
    y, p = target.numpy(), output.numpy()
    assert result["mse"] == pytest.approx(sklearn.mean_squared_error(y, p), rel=1e-6)
    assert result["mae"] == pytest.approx(sklearn.mean_absolute_error(y, p), rel=1e-6)
    assert result["r2"] == pytest.approx(sklearn.r2_score(y, p), rel=1e-6)


class _CountingMetric:
    """A metric object in torchmetrics' style: update(preds, target), compute(), reset()."""

    def __init__(self):
        self.total = torch.zeros(())

    def update(self, preds, target):
        self.total += (preds.argmax(-1) == target).sum()

    def compute(self):
        return self.total.clone()

    def reset(self):
        self.total = torch.zeros(())


def test_metrics_option_takes_names_and_metric_objects_and_checks_names(tmp_path):
    x = torch.randn(40, 4)
    y = (x[:, 0] > 0).long()
    result = fit(nn.Linear(4, 2), (x, y), (x, y), epochs=1, batch_size=8, progress=False, verbose=False,
                 metrics=["top1_accuracy", "macro_f1", _CountingMetric()])
    last = result.history[-1]
    assert last["val_top1_accuracy"] == pytest.approx(last["val_accuracy"])
    assert last["val__counting_metric"] == pytest.approx(last["val_accuracy"] * 40)  # reset before the measurement
    assert len(last["val_per_class"]["f1"]) == 2
    with pytest.raises(zoo.InvalidArgumentError, match="unknown metric 'f2'.*macro_f1"):
        fit(nn.Linear(4, 2), (x, y), metrics=["f2"])
    with pytest.raises(zoo.InvalidArgumentError, match="update"):
        fit(nn.Linear(4, 2), (x, y), metrics=[object()])


def test_default_metrics_follow_the_task_and_the_loss():
    assert default_metric_names("image-classification", "cross_entropy", list("abcdefg"), None) == [
        "macro_f1", "top5_accuracy"]
    assert default_metric_names("text-classification", "cross_entropy", ["neg", "pos"], None) == ["macro_f1"]
    assert default_metric_names("token-classification", "cross_entropy", ["O", "B-PER", "I-PER"], None) == [
        "entity_f1"]
    assert default_metric_names("automatic-speech-recognition", "cross_entropy", None, ["-", "A"]) == ["wer", "cer"]
    assert default_metric_names(None, "mse", None, None) == ["mse", "mae", "r2"]
    kinds = [type(m).__name__ for m in build_metrics(None, loss="mse")]
    assert kinds == ["Regression"]


def test_regression_run_reports_mse_mae_and_r2():
    x = torch.randn(64, 3)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]])
    result = fit(nn.Linear(3, 1), (x, y), (x, y), epochs=2, lr=0.05, batch_size=16, loss="mse", progress=False,
                 verbose=False)
    last = result.history[-1]
    assert last["val_mse"] == pytest.approx(last["val_loss"], rel=1e-5)
    assert {"val_mae", "val_r2"} <= set(last)


def test_a_real_torchmetrics_metric_is_accepted_and_agrees_with_zoos():
    torchmetrics = pytest.importorskip("torchmetrics")
    x = torch.randn(48, 4, generator=torch.Generator().manual_seed(3))
    y = (x[:, 0] + 0.3 * x[:, 1] > 0).long()
    f1 = torchmetrics.classification.MulticlassF1Score(num_classes=2, average="macro")
    result = fit(nn.Linear(4, 2), (x, y), (x, y), epochs=1, batch_size=8, progress=False, verbose=False,
                 metrics=["macro_f1", f1])
    last = result.history[-1]
    name = next(key for key in last if key.startswith("val_") and "multiclass" in key.lower())
    assert float(last[name]) == pytest.approx(last["val_macro_f1"], abs=1e-6)
