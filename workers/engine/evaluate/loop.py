"""The evaluation loop: blocks from the feed, batches through the model, outputs to the scorer."""

from __future__ import annotations

from workers.engine.evaluate.scoring import Scorer
from workers.engine.feed import BlockRunner, Feed, MissingTally
from workers.engine.types import ProgressCallback, Runner

__all__ = ["run_rows"]


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
    every step of batches: every batch of a slow model, about every 50 ms of
    a fast one (:class:`~workers.engine.feed.BlockRunner`).
    """
    blocks = BlockRunner(runner, batch_size, feed.fixed_rows)
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
        outputs = blocks.run(block.inputs, progress, done=done, total=total)
        done += rows
        scorer.add(outputs, labels)
    return done
