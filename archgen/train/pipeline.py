"""Training batches as a Keras ``PyDataset``: made by worker threads while the network trains,
on TensorFlow, JAX and PyTorch alike.

Batch ``i`` of epoch ``e`` is drawn from a generator seeded with ``(seed, e, i)``, and Keras's
ordered enqueuer hands the batches over in the order of ``i`` (``fit`` is called with
``shuffle=False``: Keras would otherwise shuffle them with Python's random state, which a resumed
run does not share). So a run resumed at epoch ``e`` sees exactly the batches, in the order, that
an unbroken run would have seen, whatever thread made them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from archgen.backend import import_keras
from archgen.train.dataset import Case
from archgen.train.outputs import OutputTarget
from archgen.train.sampling import Window, draw_batch

keras = import_keras()

Augment = Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]


class TrainBatches(keras.utils.PyDataset):
    """``steps_per_epoch`` batches per epoch of random patches (``archgen.train.sampling``), each
    augmented (``augment``) and its labels cut to every output (``OutputTarget.labels``).
    ``workers``: Keras's worker threads (1: batches are made in the training thread)."""

    def __init__(self, cases: Sequence[Case], window: Window, outputs: Sequence[OutputTarget], *, batch_size: int,
                 steps_per_epoch: int, seed: int, oversampling: float, ndim: int, augment: Augment | None = None,
                 epoch: int = 0, workers: int = 2):
        super().__init__(workers=max(workers, 1), use_multiprocessing=False, max_queue_size=max(2 * workers, 2))
        self.cases, self.window, self.outputs = list(cases), window, list(outputs)
        self.batch_size, self.steps, self.seed = batch_size, steps_per_epoch, seed
        self.oversampling, self.ndim, self.augment = oversampling, ndim, augment
        self.epoch = epoch

    @property
    def num_batches(self) -> int:
        return self.steps

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, index: int) -> tuple[np.ndarray, Any]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        images, labels = draw_batch(self.cases, self.window, self.batch_size, rng, self.oversampling)
        if self.augment is not None:
            images, labels = self.augment(images, labels, rng)
        return images, self.targets(labels)

    def targets(self, labels: np.ndarray) -> Any:
        """The labels of every output (an array for a model with one output, else a dict)."""
        cut = {out.name: np.ascontiguousarray(out.labels(labels, self.ndim, batched=True)) for out in self.outputs}
        return next(iter(cut.values())) if len(cut) == 1 else cut

    def on_epoch_end(self) -> None:
        # Keras calls this once the epoch's workers have stopped, so no batch of this epoch is
        # drawn with the next epoch's seed.
        self.epoch += 1
