"""Symbolic shape expressions (``expr_str``): only sympy constructor calls and literals, as ``sympify`` evaluates them."""

from __future__ import annotations

import ast
import re
from typing import Any

from workers.engine.errors import InvalidArtifact
from workers.engine.formats.torch_export.names import _IDENTIFIER

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
        if not _plain_number(node.value):
            raise bad()
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _SYMPY_CALLS:
        _check_sym_call(node, node.func.id, text, depth, bad)
    else:
        raise bad()


def _plain_number(value: Any) -> bool:
    if type(value) is int and abs(value) >= _MAX_INT:
        return False
    return type(value) in (int, float, bool)


def _check_sym_call(node: ast.Call, name: str, text: str, depth: int, bad: Any) -> None:
    args = node.args
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
