"""The evaluation loop: blocks from the feed, batches through the model, outputs to the scorer."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from workers.engine.arrays import Array
from workers.engine.evaluate.scoring import Scorer
from workers.engine.feed import Feed, MissingTally, run_batch
from workers.engine.types import ProgressCallback, Runner

__all__ = ["run_rows"]

Outputs = dict[str, Array]


def run_rows(
    runner: Runner,
    feed: Feed,
    scorer: Scorer,
    tally: MissingTally,
    *,
    batch_size: int,
    total: int,
    progress: ProgressCallback | None,
) -> int:
    """Feed every row through the model in ``batch_size`` batches; return the rows read.

    Once a missing or infinite value turns up, the rest is only counted (the
    run fails with every count at the end). ``progress`` is called after
    every batch.
    """
    predict: Callable[[Outputs], Outputs] = runner.predict
    if feed.fixed_rows is not None:
        fixed = feed.fixed_rows

        def predict(inputs: Outputs) -> Outputs:
            return run_batch(runner, inputs, fixed)

    done = 0
    for block in feed.blocks(batch_size):
        tally.add(block.raw)
        rows = block.rows
        if tally or block.inputs is None:
            done += rows
            if progress is not None:
                progress(done, max(total, done))
            continue
        assert block.labels is not None
        labels = scorer.prepare(block.labels)
        parts: list[Outputs] = []
        append = parts.append
        block_total = max(total, done + rows)
        if len(block.inputs) == 1:
            # One input (the common case): the per-batch work is a slice, a dict and the call.
            ((name, values),) = block.inputs.items()
            for lo in range(0, rows, batch_size):
                append(predict({name: values[lo : lo + batch_size]}))
                if progress is not None:
                    progress(done + min(lo + batch_size, rows), block_total)
        else:
            for lo, inputs in zip(range(0, rows, batch_size), block.batches(batch_size), strict=True):
                append(predict(inputs))
                if progress is not None:
                    progress(done + min(lo + batch_size, rows), block_total)
        done += rows
        scorer.add(_merge(parts), labels)
    return done


def _merge(parts: list[Outputs]) -> Outputs:
    if len(parts) == 1:
        return parts[0]
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
