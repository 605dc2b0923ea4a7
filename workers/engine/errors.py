"""Errors raised by the compute engine.

Every error says whether retrying could help: a permanent error ends the run
and its message is shown to the user as is, so it must say what is wrong.
"""

from __future__ import annotations

import os


class EngineError(Exception):
    """An engine failure with a user-facing message.

    Parameters
    ----------
    message:
        What went wrong, phrased for the person who submitted the job.
    permanent:
        ``True`` when running the same job again cannot succeed (bad input,
        unsupported model); ``False`` for transient failures worth a retry.
    """

    def __init__(self, message: str, *, permanent: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent


class InvalidArtifact(EngineError):
    """A model file that cannot be used: not the declared format, corrupt, truncated."""


class InvalidDataset(EngineError):
    """A data set file that cannot be read: ragged rows, bad encoding, no header."""


class Cancelled(EngineError):
    """Raised from a progress callback to stop a pipeline between batches."""

    def __init__(self, message: str = "cancelled by user") -> None:
        super().__init__(message, permanent=True)


class BackendUnavailable(EngineError):
    """A backend whose library or device is missing on this worker."""

    def __init__(self, name: str, reason: str, *, hint: str = "") -> None:
        text = f"backend {name!r} is unavailable: {reason}"
        if hint:
            text += f" ({hint})"
        super().__init__(text, permanent=True)
        self.name = name
        self.reason = reason
        self.hint = hint


def clean_message(exc: BaseException | str, *paths: str | None, limit: int = 500) -> str:
    """One line of an exception's text, without the worker's local paths.

    The paths (model file, weights file, their folders) mean nothing to the
    user and reveal the worker's layout, so they become ``<model>``.
    """
    text = str(exc).strip()
    for path in sorted((p for p in paths if p), key=len, reverse=True):
        text = text.replace(path, "<model>")
        folder = os.path.dirname(path)
        if len(folder) > 1:
            text = text.replace(folder, "<dir>")
    text = " ".join(text.split())
    if not text:
        text = type(exc).__name__ if isinstance(exc, BaseException) else "unknown error"
    return text if len(text) <= limit else text[: limit - 3] + "..."
