"""PyTorch integration: ``voxaug.torch.Dataset``, an ``IterableDataset`` of augmented batches.

Use it with ``DataLoader(dataset, batch_size=None, num_workers=K)``: the dataset already batches. Inside
workers it shards by ``torch.utils.data.get_worker_info()``: worker ``w`` of ``K`` computes the epoch's
batches ``w, w + K, ...`` and the DataLoader's round-robin puts them back in order, so the batches are
the same, in the same order, for every ``num_workers``. Call ``set_epoch(e)`` before each epoch (the
workers cannot advance the epoch of the dataset object in the main process).
"""
import torch
import torch.utils.data

from ._loader import Loader


def _tensor(v):
    if hasattr(v, "__array_interface__"):
        return torch.from_numpy(v)
    return v


class Dataset(torch.utils.data.IterableDataset):
    """``voxaug.Loader``'s arguments; yields dicts of torch tensors ``(B, 1, X, Y, Z)`` (no copy) plus
    ``index``, ``plan`` and pass-through fields as lists."""

    def __init__(self, subjects, pipeline, **kwargs):
        super().__init__()
        self.loader = Loader(subjects, pipeline, **kwargs)

    def set_epoch(self, epoch):
        """Sets the epoch of the next pass."""
        self.loader.set_epoch(epoch)

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
        for batch in self.loader._iterate(self.loader.epoch, select=lambda n: n % nw == wid):
            yield {k: _tensor(v) for k, v in batch.items()}
