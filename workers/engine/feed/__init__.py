"""The one input feed every job uses: data set rows in large blocks, model inputs sliced from them.

::

    feed = Feed(data, runner.input_specs, label="y", processing=spec.input)
    for block in feed.blocks(batch_size):            # whole batches per block
        for inputs in block.batches(batch_size):     # views into the block's arrays
            outputs = run_batch(runner, inputs, feed.fixed_rows)
        # or the whole block at once, the backend looping over its batches:
        outputs = run_batches(runner, block.inputs, batch_size, feed.fixed_rows)

:meth:`Feed.batches` yields model inputs alone (parity, quantization
calibration), :meth:`Feed.matrix` a row range as one array (explanations,
drift), :meth:`Feed.frame` and :meth:`Feed.build` raw rows and their
conversion (latency profiles that time the preprocessing). Every method takes
a ``start``/``stop`` row range, so a job can be split by rows across workers.
"""

from __future__ import annotations

from workers.engine.feed.convert import INPUT_DTYPES, tabular_input, to_matrix
from workers.engine.feed.core import (
    BlockRunner,
    Feed,
    FeedBlock,
    concat_outputs,
    fixed_rows,
    model_sized,
    run_batch,
    run_batches,
)
from workers.engine.feed.model import input_batches, model_feed, processed_batches, raw_rows
from workers.engine.feed.reader import RawBlock, read_blocks
from workers.engine.feed.tally import MissingTally

__all__ = [
    "INPUT_DTYPES",
    "BlockRunner",
    "Feed",
    "FeedBlock",
    "MissingTally",
    "RawBlock",
    "concat_outputs",
    "fixed_rows",
    "input_batches",
    "model_sized",
    "model_feed",
    "processed_batches",
    "raw_rows",
    "read_blocks",
    "run_batch",
    "run_batches",
    "tabular_input",
    "to_matrix",
]
