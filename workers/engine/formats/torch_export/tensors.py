"""Weights and tensor constants rebuilt from their raw bytes, never unpickled."""

from __future__ import annotations

import math
import zipfile
from typing import Any

from workers.engine.errors import InvalidArtifact
from workers.engine.formats.torch_export.archive import _read_json
from workers.engine.formats.torch_export.names import _check_fqn
from workers.engine.formats.torch_export.sym_exprs import _MAX_INT
from workers.engine.formats.torch_export.unpickling import UNPICKLING_REFUSED


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
        dtype = _SERIALIZE_TO_TORCH_DTYPE[schema.ScalarType(meta["dtype"])]
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
