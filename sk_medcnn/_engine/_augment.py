"""Batch augmentation: the augmenters on the training device, the label mixers."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import torch

from ..utils._batches import BatchAugmenter


def _flatten_steps(augmentation: Any) -> Iterator[Any]:
    """Yield the steps of nested Pipelines and lists in order, skipping None."""
    if augmentation is None or (
        isinstance(augmentation, str) and augmentation == "passthrough"
    ):
        return
    if hasattr(augmentation, "steps"):
        for _, step in augmentation.steps:
            yield from _flatten_steps(step)
    elif isinstance(augmentation, list | tuple):
        for step in augmentation:
            yield from _flatten_steps(step)
    else:
        yield augmentation


def augmentation_steps(augmentation: Any) -> tuple[list[Any], list[Any]]:
    """Split the ``augmentation`` parameter into batch augmenters and label mixers.

    Parameters
    ----------
    augmentation : object, list, Pipeline or None
        ``None``; an augmenter (an object with ``augment_batch(images,
        generator)``) or a label mixer (with ``mix_batch(images, targets,
        generator)``, such as ``MixUp``); or a list or ``Pipeline`` of them.

    Returns
    -------
    augmenters, mixers : list
        In their given order.

    Raises
    ------
    TypeError
        If a step has neither method.
    """
    augmenters: list[Any] = []
    mixers: list[Any] = []
    for step in _flatten_steps(augmentation):
        if callable(getattr(step, "augment_batch", None)):
            augmenters.append(step)
        elif callable(getattr(step, "mix_batch", None)):
            mixers.append(step)
        else:
            raise TypeError(
                "augmentation must be None, an augmenter from sk_medcnn.augmentation "
                "(an object with an augment_batch(images, generator) or "
                "mix_batch(images, targets, generator) method), or a list or "
                f"Pipeline of them; got {type(step).__name__}."
            )
    return augmenters, mixers


def make_batch_augmenter(
    augmenters: list[Any], generator: torch.Generator
) -> BatchAugmenter | None:
    """Chain augmenters into one per-batch tensor function.

    Parameters
    ----------
    augmenters : list
        Objects with ``augment_batch(images, generator)`` taking and returning
        a float tensor of shape ``(n, C, H, W)``, applied in order. One that
        also has ``batch_augmenter()`` is asked once for the function to call
        on every batch (its parameters checked then, not per batch).
    generator : torch.Generator
        The generator every random draw of the fit reads, on the training device.

    Returns
    -------
    augmenter : callable or None
        None when there is nothing to apply.
    """
    if not augmenters:
        return None
    functions = [
        step.batch_augmenter()
        if callable(getattr(step, "batch_augmenter", None))
        else step.augment_batch
        for step in augmenters
    ]

    def augment(images: torch.Tensor) -> torch.Tensor:
        for function in functions:
            images = function(images, generator)
        return images

    return augment


class MixingDataLoader(torch.utils.data.DataLoader):  # type: ignore[type-arg]
    """A training DataLoader that mixes each batch's images and labels.

    Class labels become one-hot rows, then every mixer's
    ``mix_batch(images, targets, generator)`` returns mixed images and soft
    targets (mixing runs on the CPU as batches are drawn, before the
    augmenters run on the training device). The losses accept such
    probability targets.

    Parameters
    ----------
    dataset : torch.utils.data.Dataset
        The training data.
    mixers : list
        Objects with ``mix_batch``, such as ``sk_medcnn.augmentation.MixUp``.
    n_classes : int
        Width of the one-hot targets.
    mix_generator : torch.Generator
        The CPU generator the mixers draw from.
    **kwargs
        Passed to :class:`torch.utils.data.DataLoader`.
    """

    def __init__(
        self,
        dataset: Any,
        *,
        mixers: list[Any],
        n_classes: int,
        mix_generator: torch.Generator,
        **kwargs: Any,  # DataLoader's own arguments
    ) -> None:
        super().__init__(dataset, **kwargs)
        self.mixers = mixers
        self.n_classes = n_classes
        self.mix_generator = mix_generator

    def __iter__(self) -> Any:
        """Yield ``(images, soft_targets)`` batches.

        With sample weights (a dict input), the one-hot rows are scaled by the
        weights before mixing, so a mixed sample's loss is the mix of its two
        samples' weighted losses; its own weight is then 1.
        """
        for X, targets in super().__iter__():
            weights = X.get("sample_weight") if isinstance(X, Mapping) else None
            images = X["images"] if isinstance(X, Mapping) else X
            soft = torch.nn.functional.one_hot(targets, self.n_classes).float()
            if weights is not None:
                soft = soft * weights[:, None]
            for mixer in self.mixers:
                images, soft = mixer.mix_batch(images, soft, self.mix_generator)
            if weights is None:
                yield images, soft
            else:
                yield (
                    {"images": images, "sample_weight": torch.ones_like(weights)},
                    soft,
                )
