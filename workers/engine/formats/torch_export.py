"""torch.export programs (``.pt2`` from ``torch.export.save``), loaded without running anything from the file.

Why not ``torch.export.load``
-----------------------------
In torch 2.13, ``torch.export.load`` can run code from the archive in five ways:

* the sample inputs go through ``torch.load(weights_only=True)`` and, when
  that fails, ``torch.load(weights_only=False)``: full unpickling;
* weights and tensor constants flagged ``use_pickle`` go through
  ``torch.load(weights_only=False)``, ``opaque_obj_*`` constants through
  ``pickle.loads`` and ``custom_obj_*`` (torchbind) constants through
  TorchScript's unpickler;
* every symbolic shape (``expr_str``, e.g. ``Symbol('s0', integer=True)``)
  goes through ``sympy.sympify``, which is ``eval``: an ``expr_str`` of
  ``__import__('os').system(...)`` runs on load, unpickling or not;
* ``ExportedProgram.module()`` pastes the archive's ``guards_code`` strings,
  its ``forward_arg_names`` and the keys of its input tree spec into Python
  source and ``exec``-s it;
* an archive holding ``data/aotinductor/`` files makes ``torch.export.load``
  load the compiled shared libraries inside (native code).

So a guard around ``torch.export.load`` that only forces ``weights_only``
would not make it safe. This module never hands the archive to torch:

1. :func:`check_torch_export_archive` reads only the ZIP directory and refuses
   any entry it does not know, anything pickled (``use_pickle`` payloads,
   ``opaque_obj_*``/``custom_obj_*`` constants, legacy ``.pt`` weights, the
   pre-2.8 layout), AOTInductor native code, and sample inputs whose pickle
   references anything the ``weights_only`` unpickler would not rebuild (found
   by reading the opcodes with :mod:`pickletools`; nothing is unpickled).
2. Weights and constants are raw bytes: they are rebuilt here with
   ``torch.frombuffer`` and ``as_strided`` after checking their metadata.
3. ``models/model.json`` is parsed with :mod:`json` and checked before torch
   sees it: every ``expr_str`` must be a plain sympy expression (checked on its
   Python syntax tree: calls to a fixed list of sympy constructors, literals,
   symbol names); every node target an ``aten``/``prims`` operator or one of
   the arithmetic builtins export emits; every name a Python identifier; tree
   specs plain tuples, lists and dicts; no subgraphs, operator arguments,
   custom objects or effect tokens. Node metadata and ``guards_code`` are
   dropped (the number of guards is recorded in the notes), so the only
   strings from the file that reach ``eval`` are the checked sympy
   expressions, and those that reach generated source are checked names.
4. torch's ``ExportedProgramDeserializer`` then builds the program from that
   checked document and the tensors, with no sample inputs, under
   :func:`refuse_unrestricted_unpickling`; ``module(check_guards=False)``
   makes the runnable module. The call targets are checked once more on the
   built graph.

:func:`refuse_unrestricted_unpickling` is the fail-closed backstop: while it
is held, ``torch.load`` called on the loading thread is forced to
``weights_only=True`` (an explicit ``weights_only=False`` is refused), and
``pickle.load``/``pickle.loads`` and TorchScript's object unpickler refuse, so
a torch change that started unpickling on this path would fail with
:data:`UNPICKLING_REFUSED` instead of running code. Other threads are
unaffected; loads are serialized by a lock (torch's deserializer keeps
global state too).

Remaining exposure, as with TorchScript: the graph may call any registered
``aten``/``prims`` operator but a few with file or console side effects,
kernels that skip bounds checks (``_unsafe_index``) included; untrusted
models are still best run in an isolated worker. The loader uses torch's
private serde API (``torch._export.serde``), checked against torch 2.13: a
torch upgrade must pass ``tests/engine/test_torch_export.py`` again.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import keyword
import math
import os
import pickletools
import re
import sys
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from workers.engine.errors import InvalidArtifact
from workers.engine.types import Dim, ModelInfo, TensorSpec

__all__ = [
    "UNPICKLING_REFUSED",
    "LoadedProgram",
    "check_torch_export_archive",
    "inspect_torch_export",
    "load_torch_export",
    "refuse_unrestricted_unpickling",
]

UNPICKLING_REFUSED = "this program needs unrestricted unpickling to load, which evalsvc refuses"

# Entries torch.export.save writes (relative to the archive's top folder).
_MODEL_JSON = "models/model.json"
_WEIGHTS_CONFIG = "data/weights/model_weights_config.json"
_CONSTANTS_CONFIG = "data/constants/model_constants_config.json"
_SAMPLE_INPUTS = "data/sample_inputs/model.pt"
_PLAIN_ENTRIES = frozenset(
    {"archive_format", "archive_version", "byteorder", ".data/version", ".data/serialization_id", _SAMPLE_INPUTS}
)
_WEIGHT_FILE = re.compile(r"weight_\d{1,9}")
_CONSTANT_FILE = re.compile(r"tensor_\d{1,9}")
_MAX_JSON = 64 << 20
_MAX_SAMPLE_INPUTS = 64 << 20

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

# sympy as torch's serializer writes it (sympy.srepr): constructor calls only.
_SYMPY_CALLS = frozenset(
    {
        "Symbol", "Integer", "Rational", "Float", "Add", "Mul", "Pow", "Max", "Min", "Abs",
        "Equality", "Unequality", "StrictLessThan", "LessThan", "StrictGreaterThan", "GreaterThan",
        "Eq", "Ne", "Lt", "Le", "Gt", "Ge", "And", "Or", "Not",
        # torch.utils._sympy.functions, as GraphModuleDeserializer names them
        "FloorDiv", "ModularIndexing", "Where", "PythonMod", "Mod", "CleanDiv", "CeilToInt", "FloorToInt",
        "CeilDiv", "LShift", "RShift", "PowByNatural", "FloatPow", "FloatTrueDiv", "IntTrueDiv",
        "IsNonOverlappingAndDenseIndicator", "TruncToFloat", "TruncToInt", "RoundToInt", "RoundDecimal",
        "ToFloat", "Identity",
    }
)  # fmt: skip
_SYMPY_NAMES = frozenset({"oo", "zoo", "nan", "true", "false", "int_oo"})
_GROWING = frozenset({"Pow", "PowByNatural", "FloatPow", "LShift"})
_MAX_EXPR = 10_000
_MAX_INT = 1 << 64
_FLOAT_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d{1,4})?|[-+]?(inf|nan)")


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


def inspect_torch_export(path: str) -> ModelInfo:
    """Validate a torch.export program and describe its signature.

    Parameters
    ----------
    path:
        Local path of the uploaded ``.pt2`` file.

    Returns
    -------
    ModelInfo
        Inputs and outputs with element types and shapes (symbolic dims as
        their symbol, e.g. ``"s31"``); inputs are named by the exported
        ``forward`` arguments, outputs as the torch backend names them
        (``"output"``, ``"output_0"``... or the keys of a returned dict).

    Raises
    ------
    InvalidArtifact
        For anything :func:`load_torch_export` refuses.
    """
    loaded = load_torch_export(path)
    return ModelInfo(
        format="torch_export",
        inputs=loaded.inputs,
        outputs=loaded.outputs,
        opset=dict(loaded.opset),
        producer_name="torch.export",
        producer_version=loaded.torch_version,
        notes=loaded.notes,
    )


def load_torch_export(path: str, device: Any = None) -> LoadedProgram:
    """Load a ``.pt2`` program without unpickling or evaluating anything from it (see the module docstring).

    Parameters
    ----------
    path:
        Local path of the ``.pt2`` file.
    device:
        A ``torch.device`` to move the program to (default: CPU).

    Raises
    ------
    InvalidArtifact
        For a file that is not a torch.export program, one that would need
        unpickling or code execution to load, or one torch cannot rebuild.
    """
    entries = check_torch_export_archive(path)
    import torch  # late: listing formats needs no torch

    target = torch.device("cpu" if device is None else device)
    if target.type not in ("cpu", "cuda"):
        raise ValueError(f"torch.export programs run on cpu or cuda, not {target}")
    with zipfile.ZipFile(path) as archive:
        document = _read_json(archive, entries[_MODEL_JSON], "models/model.json")
        weights = _read_payloads(archive, entries, _WEIGHTS_CONFIG, "data/weights/", _WEIGHT_FILE, target, torch)
        constants = _read_payloads(
            archive, entries, _CONSTANTS_CONFIG, "data/constants/", _CONSTANT_FILE, target, torch
        )
    # Every device the program names becomes the target: what move_to_device_pass does,
    # done on the JSON because moving the rebuilt program's metadata across device
    # types aborts the process in torch 2.13 (cuda metadata on a CPU-only build).
    dropped_guards = _check_document(document, {"type": target.type, "index": target.index})
    with refuse_unrestricted_unpickling():
        program = _deserialize(document, weights, constants, torch)
        _check_built_graph(program, torch)
        module = program.module(check_guards=False)
    return _describe(program, module, document, dropped_guards)


def check_torch_export_archive(path: str) -> dict[str, zipfile.ZipInfo]:
    """Refuse what is not a plain torch.export program, by the ZIP directory and small text entries.

    Returns the entries by their path below the archive's top folder.
    Nothing is unpickled: the sample inputs' pickle is only read opcode by opcode.

    Raises
    ------
    InvalidArtifact
        See :func:`load_torch_export`.
    """
    if os.path.getsize(path) == 0:
        raise InvalidArtifact("the file is empty")
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head != b"PK\x03\x04":
        raise InvalidArtifact("not a torch.export program: it is not a ZIP archive, as .pt2 files are")
    try:
        with zipfile.ZipFile(path) as archive:
            return _check_archive(archive)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise InvalidArtifact(f"the torch.export archive is truncated or corrupt: {exc}") from exc


def _check_archive(archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    infos = [info for info in archive.infolist() if not info.is_dir()]
    names = [info.filename for info in infos]
    if "serialized_exported_program.json" in names:
        raise InvalidArtifact(
            "this is the torch.export format of PyTorch 2.7 and older, whose weights and constants are pickled; "
            f"{UNPICKLING_REFUSED}: save the program again with torch.export.save in PyTorch 2.8 or newer"
        )
    if len({name.split("/", 1)[0] for name in names}) != 1 or any("/" not in name for name in names):
        raise InvalidArtifact("not a torch.export program: its entries are not all in one top folder")
    entries: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        relative = info.filename.split("/", 1)[1]
        if relative in entries:
            raise InvalidArtifact(f"the torch.export archive has the entry {relative!r} twice")
        entries[relative] = info
    if "archive_format" not in entries or _read_text(archive, entries["archive_format"]) != "pt2":
        if "data.pkl" in entries:
            raise InvalidArtifact("this is a TorchScript archive or a pickled checkpoint, not a torch.export program")
        raise InvalidArtifact("not a torch.export program: the archive has no archive_format entry saying pt2")
    for relative in entries:
        _check_entry(relative)
    if "archive_version" in entries and _read_text(archive, entries["archive_version"]) != "0":
        raise InvalidArtifact("the torch.export archive has a version other than 0, which this service cannot read")
    if "byteorder" in entries and _read_text(archive, entries["byteorder"]) != sys.byteorder:
        raise InvalidArtifact(f"the program was saved on a machine of another byte order than this {sys.byteorder}")
    for required in (_MODEL_JSON, _WEIGHTS_CONFIG, _CONSTANTS_CONFIG):
        if required not in entries:
            raise InvalidArtifact(f"the torch.export archive is incomplete: it lacks {required}")
    if _SAMPLE_INPUTS in entries:
        _check_sample_inputs(archive, entries[_SAMPLE_INPUTS])
    return entries


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


# ------------------------------------------------------------------ the archive


def _check_entry(relative: str) -> None:
    if relative in _PLAIN_ENTRIES or relative in (_MODEL_JSON, _WEIGHTS_CONFIG, _CONSTANTS_CONFIG):
        return
    folder, _, leaf = relative.rpartition("/")
    if folder == "data/weights" and _WEIGHT_FILE.fullmatch(leaf):
        return
    if folder == "data/constants" and _CONSTANT_FILE.fullmatch(leaf):
        return
    if relative.startswith("extra/"):
        return  # extra files: text torch.export.save stores for the user, never read here
    if relative.startswith("data/aotinductor/"):
        raise InvalidArtifact(
            "this .pt2 holds an AOTInductor-compiled model (native shared libraries), which evalsvc does not load; "
            "upload the program saved by torch.export.save"
        )
    if folder == "data/constants" and leaf.startswith(("custom_obj_", "opaque_obj_")):
        what = "a TorchScript-bound (torchbind) object" if leaf.startswith("custom_obj_") else "a pickled Python object"
        raise InvalidArtifact(f"the program has {what} among its constants; {UNPICKLING_REFUSED}")
    if relative in ("data/weights/model.pt", "data/constants/model.pt"):
        raise InvalidArtifact(f"the program keeps its weights in the legacy pickled format; {UNPICKLING_REFUSED}")
    if relative.startswith("models/"):
        raise InvalidArtifact(
            "the .pt2 package holds more than one program; evalsvc loads the one torch.export.save writes"
        )
    raise InvalidArtifact(f"the torch.export archive has an entry this service does not load: {relative!r}")


def _read_text(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    if info.file_size > 64:
        return ""
    return archive.read(info).decode("utf-8", "replace").strip()


def _read_json(archive: zipfile.ZipFile, info: zipfile.ZipInfo, what: str) -> Any:
    if info.file_size > _MAX_JSON:
        raise InvalidArtifact(f"{what} is larger than {_MAX_JSON >> 20} MiB")
    try:
        return json.loads(archive.read(info))
    except (ValueError, RecursionError, zipfile.BadZipFile, OSError) as exc:
        raise InvalidArtifact(f"{what} in the torch.export archive is not valid JSON: {exc}") from exc


def _check_sample_inputs(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
    """Refuse sample inputs whose pickle names anything torch.load(weights_only=True) would not rebuild.

    The sample inputs are never loaded; this only tells apart a program that
    ``torch.export.load`` would unpickle without restrictions.
    """
    if info.file_size == 0:
        return
    if info.file_size > _MAX_SAMPLE_INPUTS:
        raise InvalidArtifact(f"the program's sample inputs are larger than {_MAX_SAMPLE_INPUTS >> 20} MiB")
    data = archive.read(info)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as inner:
            pickles = [n for n in inner.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
            if len(pickles) != 1 or inner.getinfo(pickles[0]).file_size > _MAX_SAMPLE_INPUTS:
                raise InvalidArtifact(f"the program's sample inputs are not a tensor file; {UNPICKLING_REFUSED}")
            stream = inner.read(pickles[0])
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InvalidArtifact(f"the program's sample inputs are not a tensor file; {UNPICKLING_REFUSED}") from exc
    import torch._weights_only_unpickler as restricted

    allowed = set(restricted._get_allowed_globals())
    allowed |= {"torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter", "collections.OrderedDict"}
    strings: list[str] = []
    try:
        for opcode, arg, _ in pickletools.genops(stream):
            name = opcode.name
            if name in ("GLOBAL", "INST"):
                module, _, attr = str(arg).partition(" ")
                found = f"{module}.{attr}"
            elif name == "STACK_GLOBAL":
                found = ".".join(strings[-2:]) if len(strings) >= 2 else "?"
            elif name in ("OBJ", "NEWOBJ_EX", "EXT1", "EXT2", "EXT4"):
                found = name
            else:
                if isinstance(arg, str) and "UNICODE" in name:
                    strings.append(arg)
                continue
            if found not in allowed and not _is_storage_global(found):
                raise InvalidArtifact(f"the program's sample inputs hold a {found!r} object; {UNPICKLING_REFUSED}")
    except (ValueError, IndexError) as exc:
        raise InvalidArtifact(f"the program's sample inputs are not a valid pickle; {UNPICKLING_REFUSED}") from exc


def _is_storage_global(name: str) -> bool:
    module, _, attr = name.rpartition(".")
    return module == "torch" and re.fullmatch(r"[A-Za-z0-9]*Storage", attr) is not None


def _read_payloads(
    archive: zipfile.ZipFile,
    entries: dict[str, zipfile.ZipInfo],
    config: str,
    folder: str,
    file_name: Any,
    device: Any,
    torch: Any,
) -> dict[str, Any]:
    """Rebuild weights or tensor constants on ``device`` from their raw bytes and the config's tensor metadata."""
    document = _read_json(archive, entries[config], config)
    table = document.get("config") if isinstance(document, dict) else None
    if not isinstance(table, dict):
        raise InvalidArtifact(f"{config} in the torch.export archive is malformed")
    what = "weight" if folder.endswith("weights/") else "constant"
    storages: dict[str, Any] = {}
    tensors: dict[str, Any] = {}
    for fqn, meta in table.items():
        _check_fqn(fqn, f"the {what} name")
        if not isinstance(meta, dict):
            raise InvalidArtifact(f"{config}: the entry for {fqn!r} is malformed")
        path_name = meta.get("path_name")
        if meta.get("use_pickle") is not False or (
            isinstance(path_name, str) and path_name.startswith(("custom_obj_", "opaque_obj_"))
        ):
            raise InvalidArtifact(
                f"the program's {what} {fqn!r} is pickled (a tensor subclass or object); {UNPICKLING_REFUSED}"
            )
        if not isinstance(path_name, str) or not file_name.fullmatch(path_name) or folder + path_name not in entries:
            raise InvalidArtifact(f"{config}: the {what} {fqn!r} points at a missing entry {path_name!r}")
        tensor_meta = meta.get("tensor_meta")
        dtype, sizes, strides, offset = _tensor_layout(tensor_meta, fqn, torch)
        if path_name not in storages:
            data = archive.read(entries[folder + path_name])
            if len(data) % dtype.itemsize:
                raise InvalidArtifact(f"the data of {what} {fqn!r} is not a whole number of {dtype} elements")
            flat = torch.frombuffer(bytearray(data), dtype=dtype) if data else torch.empty(0, dtype=dtype)
            # Views of one entry share the moved storage, as they shared the saved one.
            storages[path_name] = flat.to(device)
        storage = storages[path_name]
        if storage.dtype != dtype:
            raise InvalidArtifact(f"the {what} {fqn!r} shares data of another element type")
        if (
            math.prod(sizes)
            and offset + sum((n - 1) * s for n, s in zip(sizes, strides, strict=True)) >= storage.numel()
        ):
            raise InvalidArtifact(f"the {what} {fqn!r} reaches past the end of its data")
        tensor = torch.as_strided(storage, sizes, strides, offset)
        tensors[fqn] = torch.nn.Parameter(tensor, requires_grad=False) if meta.get("is_param") is True else tensor
    return tensors


def _tensor_layout(meta: Any, fqn: str, torch: Any) -> tuple[Any, list[int], list[int], int]:
    from torch._export.serde import schema
    from torch._export.serde.serialize import _SERIALIZE_TO_TORCH_DTYPE

    if not isinstance(meta, dict) or meta.get("layout") != int(schema.Layout.Strided):
        raise InvalidArtifact(f"the tensor {fqn!r} is not a plain dense tensor")
    try:
        dtype = _SERIALIZE_TO_TORCH_DTYPE[schema.ScalarType(meta.get("dtype"))]
    except (ValueError, KeyError):
        raise InvalidArtifact(f"the tensor {fqn!r} has an unknown element type") from None

    def ints(values: Any) -> list[int]:
        if not isinstance(values, list):
            raise InvalidArtifact(f"the tensor {fqn!r} has malformed sizes or strides")
        out = []
        for value in values:
            number = value.get("as_int") if isinstance(value, dict) else None
            if type(number) is not int or not 0 <= number < _MAX_INT:
                raise InvalidArtifact(f"the tensor {fqn!r} has a symbolic or invalid size, stride or offset")
            out.append(number)
        return out

    sizes, strides = ints(meta.get("sizes")), ints(meta.get("strides"))
    (offset,) = ints([meta.get("storage_offset")])
    if len(sizes) != len(strides):
        raise InvalidArtifact(f"the tensor {fqn!r} has malformed sizes or strides")
    return dtype, sizes, strides, offset


# ------------------------------------------------------------- the program JSON


def _check_document(document: Any, device: dict[str, Any]) -> int:
    """Check models/model.json in place (see the module docstring); return how many guards were dropped.

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

    def node(spec: Any, depth: int) -> tuple[Any, list[Any], list[Any]]:
        if not isinstance(spec, dict) or spec.get("type") not in _TREE_TYPES or depth > 8:
            raise InvalidArtifact(
                f"the program's {what}s are nested in types other than tuples, lists and dicts; "
                "this service loads programs whose inputs and outputs are tensors, or flat tuples, lists or dicts of them"
            )
        children = spec.get("children_spec")
        if not isinstance(children, list):
            raise InvalidArtifact(f"models/model.json: the {what} tree spec is malformed")
        keys: list[Any] = []
        if spec["type"] == "builtins.dict":
            try:
                keys = json.loads(spec.get("context") or "null")
            except (ValueError, TypeError):
                keys = None  # type: ignore[assignment]
            if not isinstance(keys, list) or len(keys) != len(children):
                raise InvalidArtifact(f"models/model.json: the {what} tree spec is malformed")
        elif spec["type"] is None and children:
            raise InvalidArtifact(f"models/model.json: the {what} tree spec is malformed")
        return spec["type"], children, keys

    def flat(children: list[Any], depth: int) -> None:
        for child in children:
            if node(child, depth)[0] is not None:
                raise InvalidArtifact(
                    f"the program's {what}s are nested (a list or dict inside a tuple); this service loads programs "
                    "whose inputs and outputs are tensors, or flat tuples, lists or dicts of them"
                )

    kind, children, keys = node(tree, 0)
    if inputs:
        if kind != "builtins.tuple" or len(children) != 2:
            raise InvalidArtifact("models/model.json: the input tree spec is malformed")
        (args_kind, args, _), (kwargs_kind, kwargs, names) = node(children[0], 1), node(children[1], 1)
        if args_kind != "builtins.tuple" or kwargs_kind != "builtins.dict":
            raise InvalidArtifact("models/model.json: the input tree spec is malformed")
        flat(args, 2)
        flat(kwargs, 2)
        for name in names:
            _check_identifier(name, "a keyword argument")
    else:
        flat(children, 1)
        for key in keys:
            if not (isinstance(key, int) or (isinstance(key, str) and 0 < len(key) <= 255 and key.isprintable())):
                raise InvalidArtifact(f"the program returns a dict with a key this service cannot name: {key!r}")


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
        elif key == "expr_str":
            _check_sym_expr(item)
        elif key in ("name", "as_name", "user_input_name") and isinstance(item, str):
            _check_identifier(item, "a value", keywords=True)
        elif key in ("parameter_name", "buffer_name", "tensor_constant_name"):
            _check_fqn(item, "a parameter, buffer or constant")
        elif key == "target":
            _check_target(item)
        elif key in ("device", "as_device") and isinstance(item, dict):
            if item.get("type") not in ("cpu", "cuda"):
                raise InvalidArtifact(f"the program names the device {item.get('type')!r}; it can run on cpu or cuda")
            value[key] = dict(device)
            continue
        elif key in ("tensor_values", "sym_int_values", "sym_bool_values", "sym_float_values") and isinstance(
            item, dict
        ):
            for name in item:
                _check_identifier(name, "a value")
        if key != "metadata":
            _walk(item, depth + 1, device)


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


def _check_sym_expr(text: Any) -> None:
    """A symbolic shape must be sympy constructor calls and literals: sympify evaluates it as Python."""
    if not isinstance(text, str) or len(text) > _MAX_EXPR:
        raise InvalidArtifact("the program has a malformed or oversized symbolic shape expression")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise InvalidArtifact(
            f"the program has a symbolic shape that is not a sympy expression: {text[:80]!r}"
        ) from None
    _check_sym_node(tree.body, text, 0)


def _check_sym_node(node: ast.AST, text: str, depth: int) -> None:
    def bad() -> InvalidArtifact:
        return InvalidArtifact(
            f"the program has a symbolic shape that is not a plain sympy expression ({text[:80]!r}); "
            "it would be evaluated as Python on load"
        )

    if depth > 48:
        raise bad()
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        _check_sym_node(node.operand, text, depth + 1)
    elif isinstance(node, ast.Name):
        if node.id not in _SYMPY_NAMES:
            raise bad()
    elif isinstance(node, ast.Constant):
        if type(node.value) is int and abs(node.value) >= _MAX_INT:
            raise bad()
        if type(node.value) not in (int, float, bool):
            raise bad()
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _SYMPY_CALLS:
        name, args = node.func.id, node.args
        if any(isinstance(a, ast.Starred) for a in args) or any(k.arg is None for k in node.keywords):
            raise bad()
        if name == "Symbol":
            _check_symbol(node, bad)
        elif name in ("Integer", "Rational"):
            if node.keywords or not 1 <= len(args) <= 2 or not all(_small_int(a, _MAX_INT) for a in args):
                raise bad()
        elif name == "Float":
            _check_float(node, bad)
        else:
            if node.keywords:
                raise bad()
            if name in _GROWING and (len(args) != 2 or not (_small_int(args[1], 65) or _has_symbol(args[1]))):
                raise bad()  # Pow(Integer(10), Integer(10**18)) would be computed on load
            for arg in args:
                _check_sym_node(arg, text, depth + 1)
    else:
        raise bad()


def _check_symbol(node: ast.Call, bad: Any) -> None:
    from sympy.core.assumptions import _assume_defined

    args = node.args
    if len(args) != 1 or not isinstance(args[0], ast.Constant) or not isinstance(args[0].value, str):
        raise bad()
    if not _IDENTIFIER.fullmatch(args[0].value):
        raise bad()
    for kw in node.keywords:
        if kw.arg not in _assume_defined or not isinstance(kw.value, ast.Constant) or type(kw.value.value) is not bool:
            raise bad()


def _check_float(node: ast.Call, bad: Any) -> None:
    args = node.args
    if len(args) != 1 or not isinstance(args[0], ast.Constant):
        raise bad()
    value = args[0].value
    if not (type(value) in (int, float) or (isinstance(value, str) and _FLOAT_TEXT.fullmatch(value))):
        raise bad()
    for kw in node.keywords:
        if kw.arg != "precision" or not _small_int(kw.value, 257):
            raise bad()


def _small_int(node: ast.AST, limit: int) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        node = node.operand
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Integer" and node.args:
        node = node.args[0]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            node = node.operand
    return isinstance(node, ast.Constant) and type(node.value) is int and abs(node.value) < limit


def _has_symbol(node: ast.AST) -> bool:
    return any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "Symbol" for n in ast.walk(node)
    )


# ------------------------------------------------------------ building, describing


def _deserialize(document: dict[str, Any], weights: dict[str, Any], constants: dict[str, Any], torch: Any) -> Any:
    from torch._export.serde import schema
    from torch._export.serde.serialize import ExportedProgramDeserializer, _dict_to_dataclass

    try:
        serialized = _dict_to_dataclass(schema.ExportedProgram, document)
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
