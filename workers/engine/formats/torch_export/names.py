"""The names and call targets a program may use: Python identifiers, dotted attribute paths, operators."""

from __future__ import annotations

import keyword
import re
from typing import Any

from workers.engine.errors import InvalidArtifact

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
_FQN_PART = re.compile(r"[A-Za-z0-9_]{1,255}")
_OP_TARGET = re.compile(r"torch\.ops\.(aten|prims)\.([A-Za-z0-9_]+)\.([A-Za-z0-9_]+)")
# Operators with side effects outside the tensors (files, console) or that skip index validation.
_DENIED_OPS = frozenset({"from_file", "save", "_print", "warn", "_test_warn_in_autograd"})
_DENIED_OP = re.compile(r"_sparse_\w+_unsafe")
# The builtins export emits for shape arithmetic (torch's verifier allows these too).
_BUILTIN_TARGETS = frozenset(
    {f"_operator.{name}" for name in ("getitem", "add", "mul", "sub", "truediv", "floordiv", "mod", "neg", "abs")}
    | {f"_operator.{name}" for name in ("ge", "le", "gt", "lt", "eq", "ne", "and_", "or_", "not_", "pow")}
    | {"math.ceil", "math.floor", "math.trunc"}
    | {f"torch.sym_{name}" for name in ("int", "float", "max", "min", "not", "sqrt", "ite", "sum")}
)


def _check_identifier(name: Any, what: str, *, keywords: bool = False) -> None:
    # keywords=True: schema argument names such as aten.random's "from" (never emitted as Python names)
    if (
        not isinstance(name, str)
        or not _IDENTIFIER.fullmatch(name)
        or (keyword.iskeyword(name) and not keywords)
        or (name.startswith("__") and name.endswith("__"))
    ):
        raise InvalidArtifact(f"the program names {what} {name!r}, which is not a plain Python identifier")


def _check_fqn(name: Any, what: str, *, empty: bool = False) -> None:
    if empty and name == "":
        return
    parts = name.split(".") if isinstance(name, str) else [None]
    if not all(isinstance(p, str) and _FQN_PART.fullmatch(p) and not p.startswith("__") for p in parts):
        raise InvalidArtifact(f"the program names {what} {name!r}, which is not a dotted attribute path")


def _check_target(target: Any) -> None:
    if isinstance(target, str) and target in _BUILTIN_TARGETS:
        return
    match = _OP_TARGET.fullmatch(target) if isinstance(target, str) else None
    if match is None:
        raise InvalidArtifact(
            f"the program calls {target!r}; this service runs programs of aten and prims operators only"
        )
    if match.group(2) in _DENIED_OPS or _DENIED_OP.fullmatch(match.group(2)):
        raise InvalidArtifact(f"the program calls {target}, which has side effects this service does not allow")
