"""The ``.pt2`` ZIP archive: its directory, its small text and JSON entries, and the sample inputs' pickle opcodes."""

from __future__ import annotations

import io
import json
import os
import pickletools
import re
import sys
import zipfile
from typing import Any

from workers.engine.errors import InvalidArtifact
from workers.engine.formats.torch_export.unpickling import UNPICKLING_REFUSED

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
