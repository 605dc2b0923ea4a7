"""Building the program with torch's deserializer, checking its graph, and describing it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workers.engine.errors import InvalidArtifact
from workers.engine.formats.torch_export.names import _BUILTIN_TARGETS, _DENIED_OP, _DENIED_OPS
from workers.engine.types import Dim, TensorSpec


@dataclass(frozen=True)
class LoadedProgram:
    """A torch.export program loaded by :func:`load_torch_export`, with what the service needs of it.

    ``module`` is ``ExportedProgram.module(check_guards=False)``: call it with
    the tensors of :attr:`positional` as positional arguments and those of
    :attr:`keywords` by name. It returns what :attr:`output_kind` says: one
    tensor (named ``"output"`` in :attr:`outputs`), a tuple or list
    (``"output_0"``, ``"output_1"``...) or a dict (named by its keys), as the
    torch backend names TorchScript outputs.
    """

    program: Any
    module: Any
    positional: tuple[str, ...]
    keywords: tuple[str, ...]
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    #: "tensor", "sequence" or "dict": how the module returns its outputs.
    output_kind: str
    torch_version: str
    opset: dict[str, int]
    notes: tuple[str, ...]


def _deserialize(document: dict[str, Any], weights: dict[str, Any], constants: dict[str, Any], torch: Any) -> Any:
    from torch._export.serde import schema
    from torch._export.serde.serialize import ExportedProgramDeserializer, _dict_to_dataclass

    try:
        serialized = _dict_to_dataclass(schema.ExportedProgram, document)  # type: ignore[no-untyped-call]  # torch leaves it unannotated
        return ExportedProgramDeserializer().deserialize(serialized, weights, constants, None)
    except InvalidArtifact:
        raise
    except Exception as exc:  # the deserializer raises assorted types on malformed programs
        raise InvalidArtifact(f"PyTorch cannot rebuild the exported program: {_first_line(exc)}") from exc


def _check_built_graph(program: Any, torch: Any) -> None:
    """The targets torch resolved, checked again on the graph itself."""
    import math as math_module
    import operator

    builtins_ok = {getattr(operator, t.split(".")[1]) for t in _BUILTIN_TARGETS if t.startswith("_operator.")}
    builtins_ok |= {math_module.ceil, math_module.floor, math_module.trunc}
    builtins_ok |= {getattr(torch, t.split(".")[1]) for t in _BUILTIN_TARGETS if t.startswith("torch.")}
    for module in program.graph_module.modules():
        if not isinstance(module, torch.fx.GraphModule):
            continue
        for node in module.graph.nodes:
            if node.op not in ("placeholder", "output", "call_function", "get_attr"):
                raise InvalidArtifact(f"the program has a {node.op} node, which this service does not run")
            if node.op != "call_function":
                continue
            target = node.target
            if isinstance(target, torch._ops.OpOverload) and target.namespace in ("aten", "prims"):
                if target._opname in _DENIED_OPS or _DENIED_OP.fullmatch(target._opname):
                    raise InvalidArtifact(
                        f"the program calls {target}, which has side effects this service does not allow"
                    )
                continue
            if not isinstance(target, torch._ops.OpOverload) and target in builtins_ok:
                continue
            raise InvalidArtifact(f"the program calls {target!r}; this service runs aten and prims operators only")


def _describe(program: Any, module: Any, document: dict[str, Any], dropped_guards: int) -> LoadedProgram:
    import torch

    call = program.module_call_graph[0].signature
    args_spec, kwargs_spec = call.in_spec.child(0), call.in_spec.child(1)
    keywords = tuple(str(k) for k in (kwargs_spec.context or []))
    arg_names = call.forward_arg_names or []
    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    user_inputs = list(program.graph_signature.user_inputs)
    if not user_inputs:
        raise InvalidArtifact("the program takes no inputs")
    if len(user_inputs) != args_spec.num_children + len(keywords):
        raise InvalidArtifact("the program's inputs do not match its input tree spec")
    positional = tuple(arg_names[: args_spec.num_children])
    if len(positional) != args_spec.num_children:
        positional = tuple(user_inputs[: args_spec.num_children])
    inputs = tuple(
        _spec(name, placeholders[node_name].meta.get("val"), "input", torch)
        for name, node_name in zip((*positional, *keywords), user_inputs, strict=True)
    )

    out_spec = call.out_spec
    leaves = _output_nodes(program)
    if out_spec.type is None:
        kind, names = "tensor", ["output"]
    elif out_spec.type is dict:
        kind, names = "dict", [str(k) for k in out_spec.context]
    else:
        kind, names = "sequence", [f"output_{i}" for i in range(out_spec.num_children)]
    if len(names) != len(leaves) or out_spec.num_leaves != len(leaves):
        raise InvalidArtifact("the program's outputs do not match its output tree spec")
    outputs = tuple(_spec(name, node, "output", torch) for name, node in zip(names, leaves, strict=True))

    notes = [
        "forward("
        + ", ".join(f"{s.name}: {s.dtype}{_shape_text(s.shape)}" for s in inputs)
        + ") -> "
        + ", ".join(f"{s.name}: {s.dtype}{_shape_text(s.shape)}" for s in outputs)
    ]
    for symbol, bounds in sorted(document.get("range_constraints", {}).items()):
        low, high = bounds.get("min_val"), bounds.get("max_val")
        notes.append(
            f"dimension {symbol} ranges over {low if low is not None else '-inf'}..{high if high is not None else 'inf'}"
        )
    if dropped_guards:
        notes.append(
            f"{dropped_guards} input guard(s) recorded as Python source were not loaded: inputs are checked "
            "against the shapes and ranges above only"
        )
    return LoadedProgram(
        program=program,
        module=module,
        positional=positional,
        keywords=keywords,
        inputs=inputs,
        outputs=outputs,
        output_kind=kind,
        torch_version=str(document.get("torch_version") or ""),
        opset={str(k): int(v) for k, v in document.get("opset_version", {}).items()},
        notes=tuple(notes),
    )


def _output_nodes(program: Any) -> list[Any]:
    user = set(program.graph_signature.user_outputs)
    output = next(n for n in program.graph.nodes if n.op == "output")
    values = output.args[0]
    found = [v for v in values if getattr(v, "name", None) in user]
    if len(found) != len(program.graph_signature.user_outputs):
        raise InvalidArtifact("the program returns values that are not tensors, which this service cannot compare")
    return found


def _spec(name: str, value: Any, what: str, torch: Any) -> TensorSpec:
    if hasattr(value, "meta"):
        value = value.meta.get("val")
    if not isinstance(value, torch.Tensor):
        raise InvalidArtifact(
            f"the program's {what} {name!r} is not a tensor; this service feeds and reads tensors only"
        )
    shape: tuple[Dim, ...] = tuple(d if isinstance(d, int) else str(d) for d in value.shape)
    return TensorSpec(name, str(value.dtype).removeprefix("torch."), shape)


def _shape_text(shape: tuple[Dim, ...] | None) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]" if shape is not None else "[?]"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
