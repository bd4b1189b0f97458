"""5-NN on a validation split of a task's *training* data (never its test split).

Measured selection scores a setting's stored backbone on a new task this way: 30 % of each class of
the (optionally capped) training split are the queries, the rest the neighbour bank. The same
numbers, computed for every cell of a reward table, let the live table separate the measurement
that selects a setting (validation) from the score it is credited with (test).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

VAL_FRACTION = 0.3


class ValidationSplit:
    """The bank / query datasets of one task (built once, reused for every backbone)."""

    def __init__(self, task, knn: Mapping[str, Any], seed: int = 0):
        from ..evaluate.features import Transformed
        from ..evaluate.probe import stratified_split
        from ..tasks.base import SubsetDataset
        from ..train.data import eval_transform
        from .run import subset_indices

        labels = np.asarray(task.labels("train"))
        chosen = subset_indices(len(labels), knn.get("max_train"), seed)
        chosen = np.arange(len(labels)) if chosen is None else np.asarray(chosen)
        bank_pos, query_pos = stratified_split(labels[chosen], VAL_FRACTION, seed)
        base = task.dataset("train")
        tf = eval_transform(int(knn.get("img_size", 224)))
        self.task, self.knn, self.seed = task, dict(knn), seed
        self._chosen, self._bank_pos, self._query_pos = chosen, bank_pos, query_pos
        self.bank = Transformed(SubsetDataset(base, chosen[bank_pos]), tf)
        self.queries = Transformed(SubsetDataset(base, chosen[query_pos]), tf)

    def accuracy(self, backbone: str, device: str = "auto") -> float:
        """5-NN % of ``backbone`` (checkpoint path or ``scratch:<arch>``) with the bank / queries."""
        from ..device import resolve_device
        from .features import extract_features
        from .run import load_eval_backbone

        dev = resolve_device(device)
        model = load_eval_backbone(backbone, seed=self.seed)
        kw = dict(device=dev, batch_size=int(self.knn.get("feature_batch", 128)), seed=self.seed)
        fb, yb = extract_features(model, self.bank, **kw)
        fq, yq = extract_features(model, self.queries, **kw)
        return self._knn(fb, yb, fq, yq)

    def _knn(self, fb, yb, fq, yq) -> float:
        """5-NN % of queries against the bank with this split's k-NN options."""
        from .knn import knn_accuracy

        return knn_accuracy(fb, yb, fq, yq, k=int(self.knn.get("k", 5)), temperature=float(self.knn.get("temperature", 0.07)),
                            num_classes=self.task.num_classes)

    def accuracy_from_features(self, features, labels) -> float:
        """The same 5-NN from features already extracted for the (capped) training split in its
        order, e.g. by the test-split 5-NN of the same backbone: no second feature pass."""
        import torch

        labels = torch.as_tensor(labels)
        expected = torch.as_tensor(np.asarray(self.task.labels("train"))[self._chosen])
        if labels.shape != expected.shape or not torch.equal(labels.cpu(), expected):
            raise ValueError("features are not those of this split's training images in order")
        bank, queries = torch.as_tensor(self._bank_pos), torch.as_tensor(self._query_pos)
        dev = features.device
        return self._knn(features[bank.to(dev)], labels[bank].to(dev), features[queries.to(dev)], labels[queries].to(dev))

    @property
    def sizes(self) -> dict[str, int]:
        return {"bank": len(self.bank), "queries": len(self.queries)}
