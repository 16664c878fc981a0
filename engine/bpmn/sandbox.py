"""Sandboxed Python for BPMN scripts, gateway conditions, timers, service parameters and DMN.

Why: SpiffWorkflow's default engine is plain ``exec``/``eval`` with all builtins, so a process
model could read files or start programs. Here every script or expression is

1. checked and rewritten once (RestrictedPython's policy plus ours, cached per ``(mode, source)``):
   no imports, no ``_`` names, no frame/format introspection attributes, no dangerous builtins,
   no classes, generator functions, ``async``, ``global``/``nonlocal``; ``** * + % <<`` become
   bounded guard calls; loops, functions, lambdas and comprehensions call a deadline tick;
2. run with a whitelist of builtins and RestrictedPython's guards, under a per-call deadline kept
   in a thread-local (works in worker threads, no signals) and a bounded decimal context.

Every operation that can run long or allocate much in ONE C call is size-checked before it runs
(``script_too_large``): ``** * << + %`` and ``//``/divmod on ints, ``pow(a, b, m)`` (modulus and
exponent <= 4096 bits), ``int()`` of text (<= 30,000 characters), ``round()`` (|ndigits| <= 10,000),
``int.to_bytes``, printf-style ``%`` (every field's width, precision and argument text),
str/bytes padding, ``replace``, ``join``, ``sorted``/``min``/``max``/``list.sort`` (count and
container elements), f-strings, ``str()``, ``range()``, Decimal exponents, and the task data a
script leaves behind; ``bytes``, ``bytearray``, ``re`` and ``int.from_bytes`` are refused by name.
The deadline is checked between Python-level steps (``script_timeout``).

What stays possible in-process: a C call no guard foresaw, over data shared many times (comparing
or hashing ``[big] * 10**5`` against a copy). Scripts of models deployed by people therefore run in
``engine.bpmn.pool``: worker processes with RLIMIT_AS/RLIMIT_CPU, killed at the deadline.
"""

from __future__ import annotations

import ast
import copy
import json
import operator
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from decimal import Context, Decimal, DivisionByZero, InvalidOperation, Overflow, localcontext
from functools import lru_cache
from time import monotonic
from types import CodeType, ModuleType
from typing import Any, NamedTuple

from RestrictedPython.Guards import guarded_iter_unpack_sequence, guarded_unpack_sequence
from RestrictedPython.transformer import INSPECT_ATTRIBUTES, RestrictingNodeTransformer
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine.python_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment
from SpiffWorkflow.exceptions import SpiffWorkflowException

from engine.bpmn.errors import ScriptTimeout, ScriptTooLarge
from engine.errors import GovflowError, SandboxViolation

MAX_RANGE = 1_000_000       # elements in one range()
MAX_ITEMS = 1_000_000       # elements of a list/tuple grown by + * append insert extend
MAX_CHARS = 10_000_000      # characters of a str/bytes built by + * padding replace join ...
MAX_INT_BITS = 100_000      # bits of an int built by ** * <<
MAX_DECIMAL_EXP = 4_000     # |exponent| of a Decimal (int(Decimal('1e999999')) takes ~30 s)
MAX_POW_MOD_BITS = 4_096    # bits of the modulus and exponent of pow(a, b, m) (4096: ~0.13 s, 24,000: 18 s)
MAX_ROUND_DIGITS = 10_000   # |ndigits| of round() (round(7, -10**7) computes 10**10**7)
MAX_INT_TEXT = 30_000       # characters of the text int() reads (int(text, 16) has no Python limit)
MAX_SORT_ITEMS = 200_000    # elements sorted()/min()/max()/list.sort() take (1M floats: ~0.3 s)
MAX_ORDER_WORK = 20_000_000  # element comparisons (times the length of container elements) of one sort
MAX_PERCENT_FIELDS = 100_000  # '%' fields of one printf-style format
CACHE_SIZE = 4096           # compiled (mode, source) entries kept

# Refused wherever they appear as a name (task data keys with these names are unusable in scripts).
FORBIDDEN_NAMES = frozenset({
    "eval", "exec", "open", "compile", "getattr", "setattr", "delattr", "hasattr", "globals",
    "locals", "vars", "dir", "breakpoint", "input", "help", "type", "memoryview", "object",
    "super", "print", "printed", "builtins", "exit", "quit",
    # not provided; refused by name so lint reports them rather than a NameError at run time:
    # bytes(10**10) allocates in one C call, re has catastrophic backtracking
    "bytes", "bytearray", "re",
})
# Attribute names refused at check time and by _getattr_ (frames, code, str.format field access).
BLOCKED_ATTRS = INSPECT_ATTRIBUTES | frozenset({
    "format", "format_map", "mro", "as_integer_ratio", "cell_contents",
    "from_bytes",  # int.from_bytes(10 MB) makes an 80-million-bit int in one call
    "func_globals", "func_code", "func_closure", "f_trace_lines", "f_trace_opcodes",
})


@dataclass(frozen=True)
class Violation:
    """One rule break: 1-based line inside the script/expression and a short English message."""

    line: int
    message: str


class SandboxLimitError(RuntimeError):
    """A run-time resource limit was hit (result size, range length, ...)."""


class SandboxTimeout(SandboxLimitError):
    """The script or expression ran longer than its time limit."""


class SandboxTaskViolation(WorkflowTaskException, SandboxViolation):
    """A sandbox violation met while running a task: both a SandboxViolation (422 for the API) and
    a WorkflowTaskException (so Spiff-aware code sees the task and line)."""


class SandboxTaskTimeout(WorkflowTaskException, ScriptTimeout):
    """``script_timeout`` while running a task (a WorkflowTaskException too, like SandboxTaskViolation)."""


class SandboxTaskTooLarge(WorkflowTaskException, ScriptTooLarge):
    """``script_too_large`` while running a task."""


# ---------------------------------------------------------------------------- check + compile
_GUARDED_OPS = {ast.Pow: "_pow_", ast.Mult: "_mul_", ast.Add: "_add_", ast.Mod: "_mod_",
                ast.LShift: "_lshift_", ast.FloorDiv: "_floordiv_"}
_WIDE = re.compile(r"\d{5,}")   # a format width/precision of 10000 or more


def _call(name: str, args: list[ast.expr], like: ast.AST) -> ast.Call:
    node = ast.Call(func=ast.Name(name, ast.Load()), args=args, keywords=[])
    return ast.fix_missing_locations(ast.copy_location(node, like))


def _pure(node: ast.AST) -> bool:
    """True for expressions that are safe to evaluate twice (names, constants, item/attr chains)."""
    if isinstance(node, (ast.Name, ast.Constant)):
        return True
    if isinstance(node, ast.Attribute):
        return _pure(node.value)
    if isinstance(node, ast.Subscript):
        return _pure(node.value) and _pure(node.slice)
    return isinstance(node, ast.UnaryOp) and _pure(node.operand)


_REFUSED: dict[type, str] = {
    ast.Import: "import is not allowed", ast.ImportFrom: "import is not allowed",
    ast.Global: "'global' is not allowed", ast.Nonlocal: "'nonlocal' is not allowed",
    ast.ClassDef: "class definitions are not allowed",
    ast.Yield: "'yield' is not allowed (no generator functions)",
    ast.YieldFrom: "'yield' is not allowed (no generator functions)",
    **dict.fromkeys((ast.AsyncFunctionDef, ast.Await, ast.AsyncFor, ast.AsyncWith),
                    "async/await is not allowed"),
}


class _Policy(RestrictingNodeTransformer):
    """RestrictedPython's checks and rewrites plus ours; collects Violations instead of strings."""

    def __init__(self) -> None:
        super().__init__()
        self.violations: list[Violation] = []

    def error(self, node: ast.AST, info: str) -> None:
        if info not in ("Eval calls are not allowed.", "Exec calls are not allowed."):  # see check_name
            self.violations.append(Violation(getattr(node, "lineno", None) or 1, info))

    def _refuse(self, node: ast.AST, message: str) -> ast.AST:
        self.error(node, message)
        return self.node_contents_visit(node)  # keep looking for further violations

    def visit(self, node: ast.AST) -> Any:
        if type(node) in _REFUSED:
            return self._refuse(node, _REFUSED[type(node)])
        result = super().visit(node)
        if isinstance(node, (ast.While, ast.For, ast.FunctionDef)):  # deadline tick per iteration/call
            tick = ast.Expr(_call("_tick_", [], node))
            result.body.insert(0, ast.fix_missing_locations(ast.copy_location(tick, node)))
        return result

    def check_name(self, node: ast.AST, name: str | None, allow_magic_methods: bool = False) -> None:
        if name is not None and name.startswith("_") and name != "_":
            self.error(node, f"names starting with '_' are not allowed: {name}")
        elif name in FORBIDDEN_NAMES:
            self.error(node, f"'{name}' is not allowed")

    def visit_Name(self, node: ast.Name) -> Any:
        if node.id in FORBIDDEN_NAMES or (node.id.startswith("_") and node.id != "_"):
            self.check_name(node, node.id)
            return node
        return super().visit_Name(node)

    def visit_Attribute(self, node: ast.Attribute) -> Any:
        if node.attr.startswith("_"):
            return self._refuse(node, f"names starting with '_' are not allowed: {node.attr}")
        if node.attr in ("format", "format_map"):
            return self._refuse(node, f"str.{node.attr}() is not allowed, use an f-string")
        if node.attr in BLOCKED_ATTRS:
            return self._refuse(node, f"attribute not allowed: {node.attr}")
        return super().visit_Attribute(node)

    def _no_star(self, node: ast.List | ast.Tuple | ast.Set) -> Any:
        # [*a, *a] grows a list in C without any guard; a + a is bounded.
        if not isinstance(getattr(node, "ctx", None), ast.Store) and any(
                isinstance(e, ast.Starred) for e in node.elts):
            self.error(node, "'*' unpacking inside [...], (...) or {...} is not allowed, use +")
        return self.node_contents_visit(node)

    visit_List = visit_Tuple = visit_Set = _no_star

    def visit_Subscript(self, node: ast.Subscript) -> Any:
        if isinstance(node.ctx, ast.Store) and isinstance(node.slice, ast.Slice):
            return self._refuse(node, "slice assignment is not allowed")
        return super().visit_Subscript(node)

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        node = self.node_contents_visit(node)
        guard = _GUARDED_OPS.get(type(node.op))
        return node if guard is None else _call(guard, [node.left, node.right], node)

    def visit_AugAssign(self, node: ast.AugAssign) -> Any:
        # d['k'] += 1 (refused by RestrictedPython) becomes d['k'] = d['k'] + 1 when re-reading is pure.
        target = node.target
        if isinstance(target, ast.Subscript) and _pure(target.value) and _pure(target.slice):
            read = ast.Subscript(copy.deepcopy(target.value), copy.deepcopy(target.slice), ast.Load())
            assign = ast.Assign(targets=[target], value=ast.BinOp(read, node.op, node.value))
            return self.visit(ast.fix_missing_locations(ast.copy_location(assign, node)))
        return super().visit_AugAssign(node)

    def visit_FormattedValue(self, node: ast.FormattedValue) -> Any:
        for part in getattr(node.format_spec, "values", ()):
            if isinstance(part, ast.FormattedValue):
                self.error(node, "a {...} inside an f-string format spec is not allowed")
            elif isinstance(part, ast.Constant) and _WIDE.search(str(part.value)):
                self.error(node, "f-string width or precision is too large")
        node = super().visit_FormattedValue(node)
        node.value = _call("_text_", [node.value], node.value)  # bounded text per {value}
        return node

    def visit_Lambda(self, node: ast.Lambda) -> Any:  # body becomes: _tick_() and body
        node = super().visit_Lambda(node)
        node.body = ast.copy_location(ast.BoolOp(ast.And(), [_call("_tick_", [], node.body), node.body]),
                                      node.body)
        return node

    def visit_comprehension(self, node: ast.comprehension) -> Any:  # tick per element
        node = super().visit_comprehension(node)
        node.ifs.insert(0, _call("_tick_", [], node.iter))
        return node


class _Compiled(NamedTuple):
    code: CodeType | None
    violations: tuple[Violation, ...]
    syntax_error: tuple[Any, ...] | None  # SyntaxError args, re-raised by validate() (DMN needs it)


@lru_cache(maxsize=CACHE_SIZE)
def _compile(mode: str, source: str) -> _Compiled:
    """Check, rewrite and compile ``source`` once per (mode, source)."""
    try:
        tree = ast.parse(source, "<string>", mode)
        policy = _Policy()
        tree = policy.visit(tree)
        if policy.violations:
            return _Compiled(None, tuple(sorted(policy.violations, key=lambda v: v.line)), None)
        return _Compiled(compile(ast.fix_missing_locations(tree), "<string>", mode), (), None)
    except SyntaxError as err:
        args = (err.msg, (err.filename, err.lineno, err.offset, err.text))
        return _Compiled(None, (Violation(err.lineno or 1, f"syntax error: {err.msg}"),), args)
    except (ValueError, RecursionError, MemoryError) as err:  # null bytes, absurd nesting
        return _Compiled(None, (Violation(1, f"cannot be checked ({err.__class__.__name__})"),), None)


def check_script(source: str) -> list[Violation]:
    """Violations of a script (exec mode); [] when it may run."""
    return list(_compile("exec", source).violations)


def check_expression(source: str) -> list[Violation]:
    """Violations of an expression (eval mode); [] when it may run. Surrounding whitespace (BPMN
    text often has it) is stripped first, so line 1 is the first non-blank line."""
    return list(_compile("eval", source.strip()).violations)


def _violation_error(violations: tuple[Violation, ...], where: str = "") -> SandboxViolation:
    text = "; ".join(f"line {v.line}: {v.message}" for v in violations)
    return SandboxViolation(f"{SandboxViolation.default_message}: {where}{text}",
                            detail={"violations": [asdict(v) for v in violations]})


def _code(mode: str, source: str) -> CodeType:
    if not isinstance(source, str):
        raise TypeError(f"script must be text, not {type(source).__name__}")
    compiled = _compile(mode, source.strip() if mode == "eval" else source)
    if compiled.code is None:
        raise _violation_error(compiled.violations)
    return compiled.code


# ---------------------------------------------------------------------------- run-time guards
class _RunState(threading.local):
    deadline: float = float("inf")
    limit_ms: int = 0


_RUN = _RunState()
_SEQ = (str, bytes, list, tuple)
_DECIMAL_CONTEXT = Context(prec=28, Emax=MAX_DECIMAL_EXP, Emin=-MAX_DECIMAL_EXP,
                           traps=[InvalidOperation, DivisionByZero, Overflow])
_PERCENT_FIELD = re.compile(r"%(?:\(([^)]*)\))?[#0 +-]*(\*|\d*)(?:\.(\*|\d*))?[hlL]?(.?)", re.S)


def _tick() -> bool:
    if monotonic() > _RUN.deadline:
        raise SandboxTimeout(f"script exceeded its time limit of {_RUN.limit_ms} ms")
    return True


def _too_big(what: str) -> SandboxLimitError:
    return SandboxLimitError(f"result too large: {what}")


def _limit(obj: Any) -> int:
    return MAX_CHARS if isinstance(obj, (str, bytes)) else MAX_ITEMS


def _check(op: str, a: Any, b: Any) -> None:
    """Refuse ``a <op> b`` before computing it when the result would be huge."""
    ints = isinstance(a, int) and isinstance(b, int)
    if op == "+":
        too_big = isinstance(a, _SEQ) and isinstance(b, _SEQ) and len(a) + len(b) > _limit(a)
    elif op == "*":
        too_big = (a.bit_length() + b.bit_length() > MAX_INT_BITS if ints
                   else isinstance(a, _SEQ) and isinstance(b, int) and len(a) * b > _limit(a)
                   or isinstance(b, _SEQ) and isinstance(a, int) and len(b) * a > _limit(b))
    elif op == "**":
        too_big = ints and b > 0 and (a.bit_length() - 1) * b > MAX_INT_BITS
    elif op == "<<":
        too_big = ints and a != 0 and a.bit_length() + b > MAX_INT_BITS
    elif op == "//" or ints:  # '//', divmod and integer '%': quadratic in the operands' size
        too_big = ints and max(a.bit_length(), b.bit_length()) > 2 * MAX_INT_BITS
    else:  # '%' formatting: '%(a)9999s' * 10**4 % {'a': 1} is 100 MB from a 90 kB format
        text = a.decode("latin-1") if isinstance(a, bytes) else a
        too_big = isinstance(text, str) and _percent_size(text, b) > MAX_CHARS
    if too_big:
        raise _too_big(f"'{op}'")


def _percent_size(fmt: str, args: Any) -> int:
    """Upper bound of len(fmt % args): the format, every field's width and precision, and the
    text of the argument(s) each field prints (a mapping's value once per field naming it)."""
    if fmt.count("%") > MAX_PERCENT_FIELDS:
        return MAX_CHARS + 1
    size, positional, sized = len(fmt), False, {}
    for match in _PERCENT_FIELD.finditer(fmt):
        key, width, precision, conversion = match.groups()
        if conversion == "%" or not conversion:
            continue
        if width == "*" or precision == "*":
            return MAX_CHARS + 1  # the width comes from the arguments: refuse rather than guess
        size += int(width or 0) + int(precision or 0) + 330  # '%f' of 1e308 prints 309 digits
        if key is not None and isinstance(args, dict):
            if key not in sized:
                sized[key] = _text_size(args.get(key))
            size += sized[key]
        elif not positional:
            positional = True
            size += _text_size(args)
        if size > MAX_CHARS:
            break
    return size


def _guarded(op: str, func: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def run(a: Any, b: Any) -> Any:
        if op == "+" and type(a) is list and not isinstance(b, (list, tuple)):
            b = list(b)  # lst += map(f, lst) would extend from a view of itself forever
        _check(op, a, b)
        return func(a, b)
    return run


_INPLACE: dict[str, Callable[[Any, Any], Any]] = {
    "+=": _guarded("+", operator.iadd), "*=": _guarded("*", operator.imul),
    "**=": _guarded("**", operator.ipow), "<<=": _guarded("<<", operator.ilshift),
    "%=": _guarded("%", operator.imod), "-=": operator.isub, "/=": operator.itruediv,
    "//=": _guarded("//", operator.ifloordiv), ">>=": operator.irshift, "&=": operator.iand, "|=": operator.ior,
    "^=": operator.ixor, "@=": operator.imatmul,
}


def _inplacevar(op: str, x: Any, y: Any) -> Any:
    return _INPLACE[op](x, y)


def _write(obj: Any) -> Any:
    """Item/attribute writes are allowed on task-data containers (dict, list) only."""
    if type(obj) in (dict, list):
        return obj
    raise TypeError(f"cannot modify a {type(obj).__name__} in a script")


def _apply(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return func(*args, **kwargs)


# Methods whose result can dwarf their input: name -> (receiver types, size estimate before the call).
def _tabs(s: Any, tabsize: int = 8) -> int:
    return len(s) + s.count("\t" if isinstance(s, str) else b"\t") * tabsize


def _translated(s: Any, table: Any, *_: Any) -> int:
    values = table.values() if isinstance(table, dict) else ()
    return len(s) * max((len(v) for v in values if isinstance(v, (str, bytes))), default=1)


def _joined(sep: Any, items: Any) -> int:
    size = len(sep) * len(items)
    for item in items:  # stops as soon as the limit is passed (a list may hold 10**6 big strings)
        if size > MAX_CHARS:
            break
        size += len(item) if isinstance(item, _TEXT) else 0
    return size


_CONTAINERS = (list, tuple, dict, set, frozenset)


def _order_size(items: Any) -> int:
    """Work of sorting ``items``, in element comparisons weighted by the length of container
    elements (comparing two lists walks them: ``sorted([big] * 10**4)`` compares ``big`` with
    itself 10**4 times); more than MAX_ITEMS when the sort must be refused."""
    n = len(items)
    if n > MAX_SORT_ITEMS:
        return MAX_ITEMS + 1
    weight = n
    for item in items:
        if type(item) in _CONTAINERS:
            weight += len(item)
            if weight * max(1, n.bit_length()) > MAX_ORDER_WORK:
                return MAX_ITEMS + 1
    return 0


_TEXT = (str, bytes)
_METHOD_SIZES: dict[str, tuple[tuple[type, ...], Callable[..., int]]] = {
    **dict.fromkeys(("ljust", "rjust", "center", "zfill"), (_TEXT, lambda s, width, *_: width)),
    "expandtabs": (_TEXT, _tabs), "translate": (_TEXT, _translated),
    "replace": (_TEXT, lambda s, old, new, *_: len(s) + s.count(old) * (len(new) - len(old))),
    "join": (_TEXT, lambda s, items: _joined(s, items)),
    "append": ((list,), lambda lst, *_: len(lst) + 1), "insert": ((list,), lambda lst, *_: len(lst) + 1),
    "extend": ((list,), lambda lst, items: len(lst) + len(items)),
    "strftime": ((date, time), lambda d, fmt: len(fmt) * 32),
    "to_bytes": ((int,), lambda n, length=1, *_, **__: length if isinstance(length, int) else 0),
    "sort": ((list,), lambda lst, *_, **__: _order_size(lst)),
}
_MISSING = object()


def _getattr(obj: Any, name: str, default: Any = _MISSING) -> Any:
    """Attribute reads: no '_' or blocked names; size-guarded wrappers for str/bytes/list methods."""
    if type(name) is not str or name.startswith("_") or name in BLOCKED_ATTRS:
        raise AttributeError(f"attribute not allowed: {name!r}")
    obj = str if obj is _str else int if obj is _int else obj
    sized = _METHOD_SIZES.get(name)
    if sized is not None and isinstance(obj, type) and issubclass(obj, sized[0]):
        raise AttributeError(f"call {name}() on a value, not on the type")
    value = getattr(obj, name) if default is _MISSING else getattr(obj, name, default)
    estimate = sized[1] if sized is not None and isinstance(obj, sized[0]) else None
    if estimate is None and not (callable(value) and (isinstance(obj, _TEXT) or obj is str or obj is bytes)):
        return value
    limit = _limit(obj)

    def bound(*args: Any, **kwargs: Any) -> Any:  # a closure: no .func/.args to unwrap, unlike partial
        if name in ("join", "extend") and args and not isinstance(args[0], (list, tuple)):
            args = (list(args[0]), *args[1:])  # lst.extend(map(f, lst)) would read itself forever
        if estimate is not None and estimate(obj, *args, **kwargs) > limit:
            raise _too_big(f"{name}()")
        result = value(*args, **kwargs)
        if isinstance(result, _TEXT) and len(result) > MAX_CHARS:  # stops s = s.encode().hex() chains
            raise _too_big(f"{name}()")
        return result
    return bound


def _text_size(obj: Any) -> int:
    """Rough upper bound of len(str(obj)); walks containers only until MAX_CHARS is passed
    (``[s] * 10**6`` is small, its text is not)."""
    size, stack = 0, [obj]
    while stack and size <= MAX_CHARS:
        item = stack.pop()
        if isinstance(item, _TEXT):
            size += len(item) + 4
        elif isinstance(item, (list, tuple, set, frozenset, dict)):
            size += 2 * len(item) + 2
            if size <= MAX_CHARS:
                stack.extend(item.items() if isinstance(item, dict) else item)
        else:
            size += item.bit_length() // 3 + 2 if isinstance(item, int) else 40
    return size


def _text(value: Any) -> Any:
    """Guard for f-string {values}, str() and '%' arguments: refuse values whose text is huge."""
    if _text_size(value) > MAX_CHARS:
        raise _too_big("text")
    return value


def _str(*args: Any, **kwargs: Any) -> str:
    return str(_text(args[0]), *args[1:], **kwargs) if args else str(**kwargs)


_GUARDS: dict[str, Any] = {
    "_getattr_": _getattr, "_getitem_": operator.getitem, "_getiter_": iter, "_write_": _write,
    "_iter_unpack_sequence_": guarded_iter_unpack_sequence, "_unpack_sequence_": guarded_unpack_sequence,
    "_inplacevar_": _inplacevar, "_apply_": _apply, "_tick_": _tick, "_text_": _text,
    "_add_": _guarded("+", operator.add), "_mul_": _guarded("*", operator.mul),
    "_pow_": _guarded("**", operator.pow), "_mod_": _guarded("%", operator.mod),
    "_lshift_": _guarded("<<", operator.lshift), "_floordiv_": _guarded("//", operator.floordiv),
}


# ---------------------------------------------------------------------------- visible helpers
def parse_date(value: Any) -> date:
    """A ``date`` from an ISO ``YYYY-MM-DD`` (or ISO datetime) string, a date or a datetime."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise TypeError(f"cannot read a date from {type(value).__name__}")
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        try:
            return datetime.fromisoformat(value.strip()).date()
        except ValueError:
            raise ValueError(f"not an ISO date (YYYY-MM-DD): {value!r}") from None


def age_on(birth_date: Any, on_date: Any) -> int:
    """Full years of age on ``on_date`` (both ``date`` or ISO strings)."""
    born, on = parse_date(birth_date), parse_date(on_date)
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _decimal(value: Any = "0") -> Decimal:
    """Decimal() with a bounded exponent (Decimal('1e999999999') would make int()/format hang)."""
    result = Decimal(value)
    if result.is_finite() and (result.adjusted() > MAX_DECIMAL_EXP
                               or result.as_tuple().exponent < -MAX_DECIMAL_EXP):
        raise _too_big("Decimal exponent")
    return result


def _range(*args: Any) -> range:
    result = range(*args)
    try:
        size = len(result)
    except OverflowError:
        size = MAX_RANGE + 1
    if size > MAX_RANGE:
        raise SandboxLimitError(f"range() too large (more than {MAX_RANGE:,} elements)")
    return result


def _sum(iterable: Any, start: Any = 0) -> Any:
    if isinstance(start, _SEQ):
        raise TypeError("sum() adds numbers only; use + or str.join")
    return sum(iterable, start)


def _pow(base: Any, exp: Any, mod: Any = None) -> Any:
    if mod is None:
        _check("**", base, exp)
    elif isinstance(mod, int) and isinstance(exp, int) and (
            mod.bit_length() > MAX_POW_MOD_BITS or exp.bit_length() > MAX_POW_MOD_BITS
            or isinstance(base, int) and base.bit_length() > 2 * MAX_INT_BITS):
        raise _too_big(f"pow() with a modulus or exponent over {MAX_POW_MOD_BITS} bits")
    return pow(base, exp, mod)


def _int(*args: Any, **kwargs: Any) -> int:
    """int() that refuses to read over MAX_INT_TEXT characters (hex/binary text has no Python limit)."""
    text = args[0] if args else kwargs.get("x")
    if isinstance(text, (str, bytes, bytearray)) and len(text) > MAX_INT_TEXT:
        raise _too_big(f"int() of more than {MAX_INT_TEXT:,} characters")
    return int(*args, **kwargs)


def _round(number: Any, ndigits: Any = None) -> Any:
    if isinstance(ndigits, int) and abs(ndigits) > MAX_ROUND_DIGITS:
        raise _too_big(f"round() to more than {MAX_ROUND_DIGITS:,} digits")
    return round(number) if ndigits is None else round(number, ndigits)


def _divmod(a: Any, b: Any) -> Any:
    _check("//", a, b)
    return divmod(a, b)


def _ordered(items: Any, what: str) -> list[Any]:
    items = items if type(items) is list else list(items)
    if _order_size(items) > MAX_ITEMS:
        raise _too_big(f"{what}() of too many or too large elements")
    return items


def _sorted(iterable: Any, /, *, key: Any = None, reverse: bool = False) -> list[Any]:
    return sorted(_ordered(iterable, "sorted"), key=key, reverse=reverse)


def _extreme(func: Callable[..., Any], what: str) -> Callable[..., Any]:
    def run(*args: Any, **kwargs: Any) -> Any:
        items = _ordered(args[0] if len(args) == 1 else args, what)
        return func(items, **kwargs)
    run.__name__ = what
    return run


_REAL_TYPES: dict[Any, type] = {_decimal: Decimal, _range: range, _str: str, _int: int}


def _real(classinfo: Any) -> Any:
    if isinstance(classinfo, tuple):
        return tuple(_real(c) for c in classinfo)
    return _REAL_TYPES.get(classinfo, classinfo)


def _isinstance(obj: Any, classinfo: Any) -> bool:
    return isinstance(obj, _real(classinfo))


_BUILTINS: dict[str, Any] = {
    "len": len, "min": _extreme(min, "min"), "max": _extreme(max, "max"), "sum": _sum, "round": _round,
    "abs": abs, "int": _int,
    "float": float, "str": _str, "bool": bool, "list": list, "dict": dict, "set": set, "tuple": tuple,
    "sorted": _sorted, "reversed": reversed, "any": any, "all": all, "enumerate": enumerate,
    "zip": zip, "range": _range, "isinstance": _isinstance, "map": map, "filter": filter,
    "divmod": _divmod, "pow": _pow, "True": True, "False": False, "None": None,
    "date": date, "datetime": datetime, "timedelta": timedelta, "time": time, "Decimal": _decimal,
    "parse_date": parse_date, "age_on": age_on, "ValueError": ValueError, "TypeError": TypeError,
    "KeyError": KeyError, "ZeroDivisionError": ZeroDivisionError,
}
_NOT_DATA = (ModuleType, Iterator, range)
_SCALARS = frozenset({bool, int, float, type(None), Decimal, date, datetime})


# ---------------------------------------------------------------------------- environment + engine
class SandboxEnvironment(BasePythonScriptEngineEnvironment):
    """Spiff script environment running sandboxed code against task data (cheap to construct)."""

    def __init__(self, *, timeout_ms: int = 1000, extra_globals: dict[str, Any] | None = None,
                 service_handler: Callable[[str, dict[str, Any], dict[str, Any]], Any] | None = None,
                 pool: Any = None) -> None:
        extra = dict(extra_globals or {})
        self.pool = pool  # an engine.bpmn.pool.SandboxPool: run in its worker processes instead
        self._extra = extra
        clock: Callable[[], Any] = extra.get("now") or datetime.now

        def today() -> date:
            value = clock()
            return value.date() if isinstance(value, datetime) else value

        visible = {**_BUILTINS, "now": clock, "today": today}
        visible.update(extra)  # helpers live in __builtins__, so task data may shadow them safely
        super().__init__(visible)
        self.timeout_ms = timeout_ms
        self.service_handler = service_handler
        self._injected = {**_GUARDS, "__builtins__": visible}

    def _run(self, code: CodeType, scope: dict[str, Any]) -> Any:
        previous = (_RUN.deadline, _RUN.limit_ms)
        _RUN.deadline = min(previous[0], monotonic() + self.timeout_ms / 1000)
        _RUN.limit_ms = self.timeout_ms
        try:
            with localcontext(_DECIMAL_CONTEXT):
                return eval(code, scope)  # noqa: S307 - checked, rewritten and guarded code
        finally:
            _RUN.deadline, _RUN.limit_ms = previous

    def evaluate(self, expression: str, context: dict[str, Any],
                 external_context: dict[str, Any] | None = None) -> Any:
        code = _code("eval", expression)  # rule breaks are found here, without a round trip
        if self.pool is not None:
            return self.pool.run("eval", expression, context, external_context, self.timeout_ms, self._extra)
        value = self._run(code, {**(external_context or {}), **context, **self._injected})
        if type(value) not in _SCALARS and _text_size(value) > MAX_CHARS:  # DMN outputs become task data
            raise _too_big("expression value")
        return value

    def execute(self, script: str, context: dict[str, Any],
                external_context: dict[str, Any] | None = None) -> bool:
        code = _code("exec", script)
        if self.pool is not None:
            result = self.pool.run("exec", script, context, external_context, self.timeout_ms, self._extra)
            context.clear()
            context.update(result)
            return True
        external = external_context or {}
        clash = set(external).intersection(context)
        if clash:
            raise ValueError(f"task data overwrites predefined names: {sorted(clash)}")
        context.update(external)
        context.update(self._injected)
        try:
            self._run(code, context)
        finally:  # leave only data: no guards, helpers, functions, classes, modules, iterators
            for key in list(context):
                value = context[key]
                if (key in self._injected or key in external or callable(value)
                        or isinstance(value, _NOT_DATA)):
                    del context[key]
        # data shared many times over ([big] * 1000, then [x, x] nested) is small in memory but
        # huge once stored as JSON: refuse it here, not in the serializer on the event loop
        if _text_size(context) > MAX_CHARS:
            raise _too_big("task data")
        return True

    def call_service(self, context: dict[str, Any], operation_name: str | None = None,
                     operation_params: dict[str, Any] | None = None, **kwargs: Any) -> str:
        if self.service_handler is None:
            raise RuntimeError(f"no service handler is configured; cannot call service '{operation_name}'")
        params = {name: param["value"] for name, param in (operation_params or {}).items()}
        return json.dumps(self.service_handler(operation_name or "", params, context))


def _describe(err: BaseException) -> str:
    return f"{err.__class__.__name__}: {err}" if str(err) else err.__class__.__name__


def _task_violation(task: Any, source: str, err: SandboxViolation) -> SandboxTaskViolation:
    found = (err.detail or {}).get("violations", [])
    violations = [Violation(**v) for v in found] or [Violation(1, str(err))]
    spec = task.task_spec
    where = f"task {spec.bpmn_id or spec.name}" + (f" ({spec.bpmn_name})" if spec.bpmn_name else "")
    line = violations[0].line
    lines = source.splitlines() if isinstance(source, str) else []
    exc = SandboxTaskViolation(
        _violation_error(tuple(violations), f"{where}: ").message, task=task, exception=err,
        line_number=line, error_line=lines[line - 1] if 0 < line <= len(lines) else "")
    exc.detail = err.detail
    return exc


def _task_limit(engine: PythonScriptEngine, task: Any, source: str,
                err: BaseException) -> WorkflowTaskException:
    """script_timeout / script_too_large naming the task and line, in Chinese with the detail."""
    spec = task.task_spec
    where = f"task {spec.bpmn_id or spec.name}" + (f" ({spec.bpmn_name})" if spec.bpmn_name else "")
    line = getattr(err, "sandbox_line", None)
    text = ""
    if line is None:
        line, text = engine.get_error_line_number_and_content(source, err)
    elif isinstance(source, str) and 0 < line <= len(source.splitlines()):
        text = source.splitlines()[line - 1]
    if line:
        where += f" line {line}"
    cls = SandboxTaskTimeout if isinstance(err, SandboxTimeout) else SandboxTaskTooLarge
    detail = str(err) or err.__class__.__name__
    exc = cls(f"{cls.default_message}（{detail}）：{where}", task=task, exception=err,
              line_number=line, error_line=text)
    exc.detail = {"limit": detail, "line": line}
    return exc


_LIMIT_ERRORS = (SandboxLimitError, MemoryError)


class SandboxScriptEngine(PythonScriptEngine):
    """Spiff script engine on SandboxEnvironment; re-create it freely (compiled code is cached).

    Check-time rule breaks raise SandboxTaskViolation (a SandboxViolation and a
    WorkflowTaskException); run-time failures raise WorkflowTaskException naming task and line.
    """

    def __init__(self, *, timeout_ms: int = 1000, extra_globals: dict[str, Any] | None = None,
                 service_handler: Callable[[str, dict[str, Any], dict[str, Any]], Any] | None = None,
                 isolated: bool = False, pool: Any = None) -> None:
        """``isolated``: run scripts and expressions in a sandbox worker process (``pool``, else
        the process-wide ``engine.bpmn.pool.shared_pool()``) — for models deployed by people."""
        if isolated and pool is None:
            from engine.bpmn.pool import shared_pool

            pool = shared_pool()
        super().__init__(environment=SandboxEnvironment(
            timeout_ms=timeout_ms, extra_globals=extra_globals, service_handler=service_handler,
            pool=pool if isolated else None))

    def validate(self, expression: str) -> None:
        """SyntaxError as Python would raise it (DMNEngine relies on that), else SandboxViolation."""
        compiled = _compile("exec", expression)
        if compiled.syntax_error is not None:
            raise SyntaxError(*compiled.syntax_error)
        if compiled.violations:
            raise _violation_error(compiled.violations)

    def evaluate(self, task: Any, expression: str, external_context: dict[str, Any] | None = None) -> Any:
        try:
            return self.environment.evaluate(expression, task.data, external_context)
        except SandboxViolation as err:
            raise _task_violation(task, expression, err) from err
        except _LIMIT_ERRORS as err:
            raise _task_limit(self, task, expression, err) from None
        except GovflowError:
            raise
        except SpiffWorkflowException as err:
            err.add_note(f"Error evaluating expression '{expression}'")
            raise
        except Exception as err:
            raise WorkflowTaskException(f"Error evaluating expression '{expression}': {_describe(err)}",
                                        task=task, exception=err) from err

    def execute(self, task: Any, script: str, external_context: dict[str, Any] | None = None) -> bool:
        try:
            return self.environment.execute(script, task.data, external_context or {})
        except SandboxViolation as err:
            raise _task_violation(task, script, err) from err
        except _LIMIT_ERRORS as err:
            raise _task_limit(self, task, script, err) from None
        except GovflowError:
            raise
        except Exception as err:
            raise self.create_task_exec_exception(task, script, err) from err

    def call_service(self, task: Any, **kwargs: Any) -> str:
        try:
            return self.environment.call_service(task.data, **kwargs)
        except (GovflowError, SpiffWorkflowException):
            raise
        except Exception as err:
            raise WorkflowTaskException(f"service call failed: {_describe(err)}",
                                        task=task, exception=err) from err

    def create_task_exec_exception(self, task: Any, script: str, err: Exception) -> Exception:
        if isinstance(err, SpiffWorkflowException):
            return super().create_task_exec_exception(task, script, err)
        line = getattr(err, "sandbox_line", None)  # from a sandbox worker process: no traceback here
        if line is None:
            line, text = self.get_error_line_number_and_content(script, err)
        else:
            lines = script.splitlines() if isinstance(script, str) else []
            text = lines[line - 1] if 0 < line <= len(lines) else ""
        return WorkflowTaskException(_describe(err), task=task, exception=err,
                                     line_number=line, error_line=text)
