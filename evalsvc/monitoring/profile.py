"""What a monitor's reference profile is built from, and the key that changes when any of it does."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .models import Monitor

#: The drift job's defaults for the settings a profile depends on.
PROFILE_DEFAULTS = {"max_int_categories": 10, "sample_rows": 100_000, "seed": 0}


def profile_inputs(monitor: Monitor) -> dict[str, Any]:
    """The reference version, the compared columns and the settings that shape the profile."""
    detectors = monitor.detectors or {}
    return {
        "reference_dataset": str(monitor.reference_dataset_id),
        "sha256": monitor.reference_dataset.sha256,
        "columns": list(monitor.columns),
        "kinds": dict(sorted((detectors.get("column_kinds") or {}).items())),
        **{name: detectors.get(name, default) for name, default in PROFILE_DEFAULTS.items()},
    }


def profile_key(monitor: Monitor) -> str:
    return hashlib.sha256(json.dumps(profile_inputs(monitor), sort_keys=True).encode()).hexdigest()
