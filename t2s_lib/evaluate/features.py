"""Feature extraction: pooled final features of a backbone over a dataset, batched, no Python loops over samples."""

from __future__ import annotations

from typing import Any


class Transformed:
    """Apply a transform to a (PIL image, label) dataset."""

    def __init__(self, dataset, transform):
        self.dataset, self.transform = dataset, transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        img, label = self.dataset[i]
        if hasattr(img, "mode") and img.mode != "RGB":
            img = img.convert("RGB")
        return self.transform(img), int(label)


def extract_features(model, dataset, *, device=None, batch_size: int = 128, workers: int = 0,
                     train_mode: bool = False, amp: bool | None = None, seed: int = 0,
                     released_loader: bool = False) -> tuple[Any, Any]:
    """Return ``(features [N, D] float32, labels [N] int64)`` on ``device``.

    ``train_mode=False`` (default) extracts in eval mode. ``train_mode=True`` reproduces the
    released k-NN code, which never called ``model.eval()``: BatchNorm uses batch statistics and
    stochastic depth stays active (the backbone must be built with its drop path), so features
    depend on the batch (seeded here for repeatability). ``released_loader=True`` also reproduces
    that code's training-feature loader: shuffled with ``drop_last``, the dropped tail left as zero
    features labelled 0.
    """
    import torch
    from torch.utils.data import DataLoader

    device = device or next(model.parameters()).device
    model = model.to(device)
    was_training = model.training
    model.train(train_mode)
    use_amp = (device.type == "cuda") if amp is None else amp
    channels_last = device.type == "cuda"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    torch.manual_seed(seed)
    order = torch.arange(len(dataset))
    if released_loader:  # the released k-NN code's training loader: shuffled, drop_last
        order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))
        order = order[: len(order) // batch_size * batch_size]
    loader = DataLoader(_Ordered(dataset, order), batch_size=batch_size, shuffle=False, num_workers=workers,
                        pin_memory=device.type == "cuda")
    feats, labels = [], []
    with torch.inference_mode():
        for images, targets in loader:
            images = images.to(device, non_blocking=True)
            if channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                out = model(images)
            feats.append(out.float().flatten(1))
            labels.append(torch.as_tensor(targets, device=device))
    model.train(was_training)
    f, y = torch.cat(feats), torch.cat(labels).long()
    if released_loader:
        # the released code filled a preallocated bank in loader order: the dropped tail stays as zero
        # features labelled 0 (they still take part in the vote)
        bank = torch.zeros(len(dataset), f.shape[1], device=f.device, dtype=f.dtype)
        bank_y = torch.zeros(len(dataset), dtype=torch.long, device=f.device)
        bank[: len(f)], bank_y[: len(y)] = f, y
        return bank, bank_y
    return f, y


class _Ordered:
    """``dataset`` read in the given index order."""

    def __init__(self, dataset, order):
        self.dataset, self.order = dataset, order

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, i: int):
        return self.dataset[int(self.order[i])]
