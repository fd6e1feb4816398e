"""PyTorch integration: coded sample weights, the tensor codec and the deadline gather (docs/torch.md).

Needs the ``torch`` extra (``pip install 'gcdesign[torch]'``); ``import gcdesign`` never
imports torch, ``import gcdesign.torch`` does.
"""

from __future__ import annotations

from .codec import decode, encode, flat_grad, flat_params, quantize_tensor, set_flat_grad, set_flat_params
from .weights import WeightedDataset, WorkerSampler, batch_weights, sample_weights, worker_loader

__all__ = [
    "WeightedDataset",
    "WorkerSampler",
    "batch_weights",
    "decode",
    "encode",
    "flat_grad",
    "flat_params",
    "quantize_tensor",
    "sample_weights",
    "set_flat_grad",
    "set_flat_params",
    "worker_loader",
]
