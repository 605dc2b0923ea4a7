"""The array type the engine's signatures name.

Data sets and models decide an array's element type at run time (float32
features, int64 token ids, string labels), so the engine's arrays are typed
by their kind, ``numpy.ndarray``, with the element type left open.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import numpy as np

__all__ = ["Array"]

#: A NumPy array of any element type.
Array: TypeAlias = np.ndarray[Any, np.dtype[Any]]
