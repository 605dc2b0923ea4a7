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
would not make it safe. This package never hands the archive to torch:

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

Modules: :mod:`.unpickling` (:data:`UNPICKLING_REFUSED` and
:func:`refuse_unrestricted_unpickling`), :mod:`.archive` (the ZIP directory,
its small entries and the sample inputs' opcodes: step 1), :mod:`.tensors`
(weights and constants from raw bytes: step 2), :mod:`.names` (names and call
targets), :mod:`.sym_exprs` (symbolic shape expressions), :mod:`.document`
(``models/model.json``: step 3), :mod:`.program` (building, checking and
describing the program: step 4) and :mod:`.loader`
(:func:`load_torch_export`, :func:`inspect_torch_export`).
"""

from __future__ import annotations

from workers.engine.formats.torch_export.archive import check_torch_export_archive
from workers.engine.formats.torch_export.loader import inspect_torch_export, load_torch_export
from workers.engine.formats.torch_export.program import LoadedProgram
from workers.engine.formats.torch_export.unpickling import UNPICKLING_REFUSED, refuse_unrestricted_unpickling

__all__ = [
    "UNPICKLING_REFUSED",
    "LoadedProgram",
    "check_torch_export_archive",
    "inspect_torch_export",
    "load_torch_export",
    "refuse_unrestricted_unpickling",
]
