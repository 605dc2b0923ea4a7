"""The program JSON (``models/model.json``), checked and cleaned in place before torch sees it."""

from __future__ import annotations

import json
from typing import Any

from workers.engine.errors import InvalidArtifact
from workers.engine.formats.torch_export.names import _check_fqn, _check_identifier, _check_target
from workers.engine.formats.torch_export.sym_exprs import _check_sym_expr
from workers.engine.formats.torch_export.unpickling import UNPICKLING_REFUSED

_INPUT_SPEC_KINDS = frozenset({"user_input", "parameter", "buffer", "tensor_constant", "constant_input"})
_OUTPUT_SPEC_KINDS = frozenset({"user_output", "buffer_mutation", "user_input_mutation"})
_REFUSED_KEYS = {
    "as_graph": "a higher-order operator with a subgraph (cond, map, while_loop...)",
    "as_operator": "an operator passed as an argument",
    "as_custom_obj": "a TorchScript-bound (torchbind) object",
    "as_custom_objs": "TorchScript-bound (torchbind) objects",
    "custom_obj": "a TorchScript-bound (torchbind) object input",
    "token": "side-effect tokens (effectful operators)",
    "as_token": "side-effect tokens (effectful operators)",
}
_TREE_TYPES = frozenset({None, "builtins.tuple", "builtins.list", "builtins.dict"})


def _check_document(document: Any, device: dict[str, Any]) -> int:
    """Check models/model.json in place (see the package docstring); return how many guards were dropped.

    ``device`` (``{"type": ..., "index": ...}``) replaces every device the program names.
    """
    if not isinstance(document, dict) or not isinstance(document.get("graph_module"), dict):
        raise InvalidArtifact("models/model.json in the torch.export archive is not a serialized program")
    guards = document.get("guards_code") or []
    if not isinstance(guards, list):
        raise InvalidArtifact("models/model.json: guards_code is malformed")
    # Python source that ExportedProgram.module() would exec: never kept.
    document["guards_code"] = []
    verifiers = document.get("verifiers", [])
    if not isinstance(verifiers, list) or not set(verifiers) <= {"", "ATEN", "TRAINING"}:
        raise InvalidArtifact(f"the program names verifiers this service does not know: {verifiers!r}")
    opset = document.get("opset_version", {})
    if not isinstance(opset, dict) or not all(isinstance(k, str) and type(v) is int for k, v in opset.items()):
        raise InvalidArtifact("models/model.json: opset_version is malformed")
    ranges = document.get("range_constraints", {})
    if not isinstance(ranges, dict):
        raise InvalidArtifact("models/model.json: range_constraints is malformed")
    for name, bounds in ranges.items():
        _check_identifier(name, "a symbolic dimension")
        if not isinstance(bounds, dict) or not all(v is None or type(v) is int for v in bounds.values()):
            raise InvalidArtifact(f"the range of the symbolic dimension {name!r} is malformed")
    module = document["graph_module"]
    if module.get("treespec_namedtuple_fields"):
        raise InvalidArtifact("the program takes or returns named tuples, which this service does not load")
    if module.get("graph", {}).get("custom_obj_values"):
        raise InvalidArtifact(f"the program holds TorchScript-bound (torchbind) objects; {UNPICKLING_REFUSED}")
    _check_signature(module.get("signature"))
    calls = module.get("module_call_graph")
    if not isinstance(calls, list) or not calls or not isinstance(calls[0], dict) or calls[0].get("fqn") != "":
        raise InvalidArtifact("models/model.json: the module call graph is malformed")
    for entry in calls:
        _check_call_entry(entry, top=entry is calls[0])
    _walk(document, 0, device)
    return len(guards)


def _check_signature(signature: Any) -> None:
    if not isinstance(signature, dict):
        raise InvalidArtifact("models/model.json: the graph signature is malformed")
    for key, kinds in (("input_specs", _INPUT_SPEC_KINDS), ("output_specs", _OUTPUT_SPEC_KINDS)):
        for spec in signature.get(key) or []:
            kind = next(iter(spec), None) if isinstance(spec, dict) and len(spec) == 1 else None
            if kind not in kinds:
                raise InvalidArtifact(f"the program's signature has a {kind!r} entry, which this service does not load")


def _check_call_entry(entry: Any, *, top: bool) -> None:
    if not isinstance(entry, dict):
        raise InvalidArtifact("models/model.json: the module call graph is malformed")
    _check_fqn(entry.get("fqn"), "a submodule name", empty=True)
    signature = entry.get("signature")
    if signature is None:
        if top:
            raise InvalidArtifact("models/model.json: the program has no call signature")
        return
    if not isinstance(signature, dict):
        raise InvalidArtifact("models/model.json: a call signature is malformed")
    names = signature.get("forward_arg_names")
    if names is not None:
        if not isinstance(names, list):
            raise InvalidArtifact("models/model.json: forward_arg_names is malformed")
        for name in names:
            _check_identifier(name, "a forward() argument")
    _check_tree(signature.get("in_spec"), inputs=True)
    _check_tree(signature.get("out_spec"), inputs=False)


def _check_tree(text: Any, *, inputs: bool) -> None:
    """Tree specs: (args tuple of tensors, kwargs dict of tensors) in; a tensor, or a flat tuple/list/dict out."""
    what = "input" if inputs else "output"
    try:
        protocol, tree = json.loads(text) if isinstance(text, str) else (None, None)
    except (ValueError, TypeError, RecursionError):
        protocol, tree = None, None
    if protocol != 1 or not isinstance(tree, dict):
        raise InvalidArtifact(f"models/model.json: the {what} tree spec is malformed")

    kind, children, keys = _tree_node(tree, 0, what)
    if inputs:
        if kind != "builtins.tuple" or len(children) != 2:
            raise InvalidArtifact("models/model.json: the input tree spec is malformed")
        args_kind, args, _ = _tree_node(children[0], 1, what)
        kwargs_kind, kwargs, names = _tree_node(children[1], 1, what)
        if args_kind != "builtins.tuple" or kwargs_kind != "builtins.dict":
            raise InvalidArtifact("models/model.json: the input tree spec is malformed")
        _tree_flat(args, 2, what)
        _tree_flat(kwargs, 2, what)
        for name in names:
            _check_identifier(name, "a keyword argument")
    else:
        _tree_flat(children, 1, what)
        for key in keys:
            if not (isinstance(key, int) or (isinstance(key, str) and 0 < len(key) <= 255 and key.isprintable())):
                raise InvalidArtifact(f"the program returns a dict with a key this service cannot name: {key!r}")


def _tree_node(spec: Any, depth: int, what: str) -> tuple[Any, list[Any], list[Any]]:
    """One node of a tree spec: its type, its children and (for a dict) its keys."""
    if not isinstance(spec, dict) or spec.get("type") not in _TREE_TYPES or depth > 8:
        raise InvalidArtifact(
            f"the program's {what}s are nested in types other than tuples, lists and dicts; "
            "this service loads programs whose inputs and outputs are tensors, or flat tuples, lists or dicts of them"
        )
    children = spec.get("children_spec")
    if not isinstance(children, list):
        raise InvalidArtifact(f"models/model.json: the {what} tree spec is malformed")
    keys: Any = []
    if spec["type"] == "builtins.dict":
        try:
            keys = json.loads(spec.get("context") or "null")
        except (ValueError, TypeError):
            keys = None
        if not isinstance(keys, list) or len(keys) != len(children):
            raise InvalidArtifact(f"models/model.json: the {what} tree spec is malformed")
    elif spec["type"] is None and children:
        raise InvalidArtifact(f"models/model.json: the {what} tree spec is malformed")
    return spec["type"], children, keys


def _tree_flat(children: list[Any], depth: int, what: str) -> None:
    for child in children:
        if _tree_node(child, depth, what)[0] is not None:
            raise InvalidArtifact(
                f"the program's {what}s are nested (a list or dict inside a tuple); this service loads programs "
                "whose inputs and outputs are tensors, or flat tuples, lists or dicts of them"
            )


def _walk(value: Any, depth: int, device: dict[str, Any]) -> None:
    if depth > 64:
        raise InvalidArtifact("models/model.json is nested too deeply")
    if isinstance(value, list):
        for item in value:
            _walk(item, depth + 1, device)
        return
    if not isinstance(value, dict):
        return
    for key, item in list(value.items()):
        if key in _REFUSED_KEYS and item not in (None, [], {}):
            raise InvalidArtifact(f"the program uses {_REFUSED_KEYS[key]}, which this service does not load")
        if key == "metadata" and isinstance(item, dict):
            value[key] = {}  # stack traces and module paths: debugging only, never needed to run
        elif key in ("device", "as_device") and isinstance(item, dict):
            if item.get("type") not in ("cpu", "cuda"):
                raise InvalidArtifact(f"the program names the device {item.get('type')!r}; it can run on cpu or cuda")
            value[key] = dict(device)
            continue
        else:
            _check_named(key, item)
        if key != "metadata":
            _walk(item, depth + 1, device)


def _check_named(key: str, item: Any) -> None:
    """The checks on a name or expression the program holds under ``key``."""
    if key == "expr_str":
        _check_sym_expr(item)
    elif key in ("name", "as_name", "user_input_name") and isinstance(item, str):
        _check_identifier(item, "a value", keywords=True)
    elif key in ("parameter_name", "buffer_name", "tensor_constant_name"):
        _check_fqn(item, "a parameter, buffer or constant")
    elif key == "target":
        _check_target(item)
    elif key in ("tensor_values", "sym_int_values", "sym_bool_values", "sym_float_values") and isinstance(item, dict):
        for name in item:
            _check_identifier(name, "a value")
