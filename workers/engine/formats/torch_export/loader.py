"""Loading and inspecting a ``.pt2`` program: the steps of the package docstring, in order."""

from __future__ import annotations

import zipfile
from typing import Any

from workers.engine.formats.torch_export.archive import (
    _CONSTANT_FILE,
    _CONSTANTS_CONFIG,
    _MODEL_JSON,
    _WEIGHT_FILE,
    _WEIGHTS_CONFIG,
    _read_json,
    check_torch_export_archive,
)
from workers.engine.formats.torch_export.document import _check_document
from workers.engine.formats.torch_export.program import LoadedProgram, _check_built_graph, _describe, _deserialize
from workers.engine.formats.torch_export.tensors import _read_payloads
from workers.engine.formats.torch_export.unpickling import refuse_unrestricted_unpickling
from workers.engine.types import ModelInfo


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
    """Load a ``.pt2`` program without unpickling or evaluating anything from it (see the package docstring).

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
