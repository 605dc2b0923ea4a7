"""The fail-closed unpickling guard held while torch rebuilds a program (see the package docstring)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from workers.engine.errors import InvalidArtifact

UNPICKLING_REFUSED = "this program needs unrestricted unpickling to load, which evalsvc refuses"


@contextlib.contextmanager
def refuse_unrestricted_unpickling() -> Iterator[None]:
    """Make unpickling on this thread fail closed with :data:`UNPICKLING_REFUSED` while held.

    ``torch.load`` runs with ``weights_only=True`` (tensors and plain
    containers only); an explicit ``weights_only=False`` or a custom
    ``pickle_module`` is refused, as are ``pickle.load``, ``pickle.loads`` and
    ``torch._C._pickle_load_obj``. Calls from other threads go to the
    originals. Holders are serialized by a lock; everything is restored on
    exit. A refusal that torch code caught and swallowed still fails the
    block on exit.

    Raises
    ------
    InvalidArtifact
        :data:`UNPICKLING_REFUSED`, from the refused call or on exit.
    """
    import pickle

    import torch

    with _GUARD_LOCK:
        owner = threading.get_ident()
        refused: list[str] = []

        def refuse(what: str) -> InvalidArtifact:
            refused.append(what)
            return InvalidArtifact(f"{UNPICKLING_REFUSED} ({what})")

        def guard(original: Any, what: str) -> Any:
            def guarded(*args: Any, **kwargs: Any) -> Any:
                if threading.get_ident() != owner:
                    return original(*args, **kwargs)
                raise refuse(what)

            return guarded

        torch_load = torch.serialization.load

        def weights_only_load(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() != owner:
                return torch_load(*args, **kwargs)
            pickle_module = args[2] if len(args) > 2 else kwargs.get("pickle_module")
            if kwargs.get("weights_only") is False or pickle_module is not None:
                raise refuse("torch.load(weights_only=False)")
            kwargs["weights_only"] = True
            return torch_load(*args, **kwargs)

        patches = [
            (torch, "load", weights_only_load),
            (torch.serialization, "load", weights_only_load),
            (pickle, "load", guard(pickle.load, "pickle.load")),
            (pickle, "loads", guard(pickle.loads, "pickle.loads")),
            (torch._C, "_pickle_load_obj", guard(torch._C._pickle_load_obj, "torchbind object unpickler")),
        ]
        saved = [(target, name, getattr(target, name)) for target, name, _ in patches]
        try:
            for target, name, replacement in patches:
                setattr(target, name, replacement)
            yield
        finally:
            for target, name, original in saved:
                setattr(target, name, original)
        if refused:
            raise InvalidArtifact(f"{UNPICKLING_REFUSED} ({refused[0]})")


_GUARD_LOCK = threading.Lock()
