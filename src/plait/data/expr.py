"""Column expressions: ``col("x") > 3``, ``(col("b") * 2).alias("b2")``, ``sum("x")``.

An expression is a small immutable tree. A columnar step evaluates it on an Arrow table
with ``pyarrow.compute`` kernels (``evaluate``); the optimizer reads which columns it
needs (``columns``) and hands the conditions to a Parquet reader, which skips the row
groups whose statistics rule them out and reads the needed columns only. Semantics are SQL's:
a comparison with a null is null, ``where`` drops rows whose condition is null, ``/``
divides as floats, aggregates skip nulls.
"""

from __future__ import annotations

import builtins
import datetime
import decimal
from collections.abc import Iterable
from typing import Any

# name -> (pyarrow.compute function, how it is written)
_BINARY = {
    "add": ("add_checked", "+"),
    "sub": ("subtract_checked", "-"),
    "mul": ("multiply_checked", "*"),
    "div": ("divide", "/"),
    "eq": ("equal", "=="),
    "ne": ("not_equal", "!="),
    "lt": ("less", "<"),
    "le": ("less_equal", "<="),
    "gt": ("greater", ">"),
    "ge": ("greater_equal", ">="),
    "and": ("and_kleene", "&"),
    "or": ("or_kleene", "|"),
}
_LITERALS = (bool, int, float, str, bytes, datetime.date, datetime.datetime, decimal.Decimal, type(None))


class Expr:
    """A column expression. Build with ``col``, ``lit``, operators and the methods below."""

    __slots__ = ("op", "args", "name")

    def __init__(self, op: str, args: tuple, name: str | None = None) -> None:
        self.op, self.args, self.name = op, args, name

    # ------------------------------------------------------------ building
    def _binary(self, op: str, other: Any, flipped: bool = False) -> Expr:
        other = _expr(other)
        return Expr(op, (other, self) if flipped else (self, other))

    def __add__(self, o: Any) -> Expr: return self._binary("add", o)
    def __radd__(self, o: Any) -> Expr: return self._binary("add", o, True)
    def __sub__(self, o: Any) -> Expr: return self._binary("sub", o)
    def __rsub__(self, o: Any) -> Expr: return self._binary("sub", o, True)
    def __mul__(self, o: Any) -> Expr: return self._binary("mul", o)
    def __rmul__(self, o: Any) -> Expr: return self._binary("mul", o, True)
    def __truediv__(self, o: Any) -> Expr: return self._binary("div", o)
    def __rtruediv__(self, o: Any) -> Expr: return self._binary("div", o, True)
    def __eq__(self, o: Any) -> Expr: return self._binary("eq", o)  # type: ignore[override]
    def __ne__(self, o: Any) -> Expr: return self._binary("ne", o)  # type: ignore[override]
    def __lt__(self, o: Any) -> Expr: return self._binary("lt", o)
    def __le__(self, o: Any) -> Expr: return self._binary("le", o)
    def __gt__(self, o: Any) -> Expr: return self._binary("gt", o)
    def __ge__(self, o: Any) -> Expr: return self._binary("ge", o)
    def __and__(self, o: Any) -> Expr: return self._binary("and", o)
    def __rand__(self, o: Any) -> Expr: return self._binary("and", o, True)
    def __or__(self, o: Any) -> Expr: return self._binary("or", o)
    def __ror__(self, o: Any) -> Expr: return self._binary("or", o, True)
    def __invert__(self) -> Expr: return Expr("not", (self,))
    def __neg__(self) -> Expr: return Expr("neg", (self,))  # fmt: skip

    __hash__ = object.__hash__  # == builds an expression, so identity is the hash

    def __bool__(self) -> bool:
        raise TypeError(
            f"the truth of a column expression ({self}) is not known until it runs on data: "
            "combine conditions with & | ~ (not and/or/not), and pass them to where()"
        )

    def alias(self, name: str) -> Expr:
        """The same values under the column name ``name`` (in ``select``)."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"alias() takes a column name, got {name!r}")
        return Expr(self.op, self.args, name)

    def isin(self, values: Iterable) -> Expr:
        values = tuple(values)
        for v in values:
            _check_literal(v)
        return Expr("isin", (self, values))

    def is_null(self) -> Expr:
        return Expr("is_null", (self,))

    def is_not_null(self) -> Expr:
        return Expr("is_valid", (self,))

    def cast(self, type_name: str) -> Expr:
        """The values as an Arrow type (``"int64"``, ``"float64"``, ``"string"``, ...)."""
        import pyarrow as pa

        try:
            pa.type_for_alias(type_name)
        except (ValueError, TypeError, KeyError):
            raise ValueError(f"cast({type_name!r}): not an Arrow type name such as 'int64', 'float64', 'string'") from None
        return Expr("cast", (self, type_name))

    def starts_with(self, prefix: str) -> Expr:
        return Expr("starts_with", (self, _str_arg("starts_with", prefix)))

    def ends_with(self, suffix: str) -> Expr:
        return Expr("ends_with", (self, _str_arg("ends_with", suffix)))

    def contains(self, part: str) -> Expr:
        return Expr("contains", (self, _str_arg("contains", part)))

    def split(self, separator: str | None = None) -> Expr:
        """A list of the parts of a string, as ``str.split``: with no separator, the words
        between runs of whitespace (none for a blank string); with one, the pieces between
        its occurrences. ``Dataset.explode`` puts each on a row of its own."""
        if separator is not None and (not isinstance(separator, str) or not separator):
            raise ValueError(f"split() takes a non-empty separator or none, got {separator!r}")
        return Expr("split", (self, separator))

    def strip(self) -> Expr:
        """A string without the whitespace at its ends, as ``str.strip()``."""
        return Expr("strip", (self,))

    def length(self) -> Expr:
        """The characters in a string, as ``len()`` (a list column: its items)."""
        return Expr("length", (self,))

    # ------------------------------------------------------------ reading
    @property
    def output_name(self) -> str:
        """The column a select makes of it: its alias, else the column it reads, else its text."""
        if self.name is not None:
            return self.name
        if self.op == "col":
            return self.args[0]
        return str(self)

    def columns(self) -> set[str]:
        """The input columns it reads."""
        if self.op == "col":
            return {self.args[0]}
        found: set[str] = set()
        for a in self.args:
            if type(a) is Expr:
                found |= a.columns()
        return found

    def __repr__(self) -> str:
        return f"<plait.data expression {self}>"

    def __str__(self) -> str:
        text = self._text()
        return f"{text} AS {self.name}" if self.name is not None and self.op != "col" else text

    def _text(self) -> str:
        op, a = self.op, self.args
        if op == "col":
            return a[0]
        if op == "lit":
            return repr(a[0])
        if op in _BINARY:
            return f"({a[0]._text()} {_BINARY[op][1]} {a[1]._text()})"
        if op == "not":
            return f"~{a[0]._text()}"
        if op == "neg":
            return f"-{a[0]._text()}"
        if op == "when":
            return f"when({a[0]._text()}, {a[1]._text()}, {a[2]._text()})"
        rest = "".join(f", {x!r}" for x in a[1:])
        return f"{op}({a[0]._text()}{rest})"

    def __reduce__(self) -> Any:
        return (Expr, (self.op, self.args, self.name))

    # ------------------------------------------------------------ running
    def evaluate(self, table: Any) -> Any:
        """Its values over ``table``: an array as long as the table, or a scalar."""
        import pyarrow as pa
        import pyarrow.compute as pc

        op, a = self.op, self.args
        if op == "col":
            name = a[0]
            if name not in table.column_names:
                raise KeyError(f"no column {name!r}; the columns are {table.column_names}")
            return table.column(name)
        if op == "lit":
            return pa.scalar(a[0])
        if op == "div":
            left, right = (_floating(pc, x.evaluate(table)) for x in a)
            return pc.divide(left, right)
        if op in ("add", "sub", "mul"):
            fn = getattr(pc, _BINARY[op][0])
            return _arithmetic(pa, fn, *_matched(pa, a[0].evaluate(table), a[1].evaluate(table), None), op == "mul")
        if op in _BINARY:
            logic = pa.bool_() if op in ("and", "or") else None
            return getattr(pc, _BINARY[op][0])(*_matched(pa, a[0].evaluate(table), a[1].evaluate(table), logic))
        if op == "not":
            return pc.invert(_typed(pa, a[0].evaluate(table), pa.bool_()))
        if op == "neg":
            return pc.negate_checked(a[0].evaluate(table))
        if op == "isin":  # SQL's IN: null for a null value, and for no match when the list holds null
            values = a[0].evaluate(table)
            listed = [v for v in a[1] if v is not None]
            values = _typed(pa, values, pa.array(listed).type if listed else pa.string())
            found = pc.is_in(values, value_set=pa.array(listed, type=_value_type(values)))
            found = pc.if_else(pc.is_null(values), pa.scalar(None, pa.bool_()), found)
            return pc.or_kleene(found, pa.scalar(None, pa.bool_())) if len(listed) < len(a[1]) else found
        if op in ("is_null", "is_valid"):
            return getattr(pc, op)(a[0].evaluate(table))
        if op == "cast":
            return pc.cast(a[0].evaluate(table), pa.type_for_alias(a[1]))
        if op in ("starts_with", "ends_with"):
            return getattr(pc, op)(_typed(pa, a[0].evaluate(table), pa.string()), pattern=a[1])
        if op == "contains":
            return pc.match_substring(_typed(pa, a[0].evaluate(table), pa.string()), pattern=a[1])
        if op == "split":
            values = _typed(pa, a[0].evaluate(table), pa.string())
            if a[1] is not None:
                return pc.split_pattern(values, pattern=a[1])
            if _plain_ascii(pa, values):  # the faster kernels, the same answer
                return _without_empty(pa, pc, pc.ascii_split_whitespace(pc.ascii_trim_whitespace(values)))
            return _without_empty(pa, pc, pc.utf8_split_whitespace(pc.utf8_trim_whitespace(values)))
        if op == "strip":
            return pc.utf8_trim_whitespace(_typed(pa, a[0].evaluate(table), pa.string()))
        if op == "length":
            values = _typed(pa, a[0].evaluate(table), pa.string())
            return pc.list_value_length(values) if _is_list(pa, values.type) else pc.utf8_length(values)
        if op == "when":
            condition = _typed(pa, a[0].evaluate(table), pa.bool_())
            return pc.if_else(condition, *_matched(pa, a[1].evaluate(table), a[2].evaluate(table), None))
        raise AssertionError(f"unknown expression {op!r}")


def _typed(pa: Any, values: Any, like: Any) -> Any:
    """Values of the null type (a column of record rows that were all None in this
    partition, or a None literal) as nulls of type ``like``: Arrow has few kernels for
    the null type."""
    return values.cast(like) if pa.types.is_null(values.type) else values


def _matched(pa: Any, left: Any, right: Any, like: Any) -> tuple[Any, Any]:
    """The two operands, a null-typed one given the other's type (or ``like``, or int64
    when both are null-typed)."""
    if like is not None:
        return _typed(pa, left, like), _typed(pa, right, like)
    if pa.types.is_null(left.type):
        return _typed(pa, left, right.type if not pa.types.is_null(right.type) else pa.int64()), _typed(pa, right, pa.int64())
    return left, _typed(pa, right, left.type)


def _arithmetic(pa: Any, fn: Any, left: Any, right: Any, multiply: bool) -> Any:
    """``fn(left, right)`` with decimals kept exact and narrow: an int constant beside a
    decimal is a decimal of its own digits (not of 19, which would widen every product),
    and a product whose declared precision passes 38 digits has its wider operand cast
    (checked) to the precision that fits; only when the values do not fit is it computed
    with 256-bit decimals, and past those as floats, as a database does rather than fail."""
    left, right = _narrow_constant(pa, left, right), _narrow_constant(pa, right, left)
    try:
        return fn(left, right)
    except pa.ArrowInvalid as exc:
        if "precision" not in str(exc).lower():
            raise
    if multiply:
        fitted = _fitted(pa, left, right)
        if fitted is not None:
            return fn(*fitted)
    wide = [_widened(pa, x, pa.decimal256) for x in (left, right)]
    try:
        return fn(*wide)
    except pa.ArrowInvalid as exc:
        if "precision" not in str(exc).lower():
            raise
    return fn(*(_widened(pa, x, None) for x in (left, right)))


def _narrow_constant(pa: Any, value: Any, other: Any) -> Any:
    if isinstance(value, pa.Scalar) and pa.types.is_integer(value.type) and pa.types.is_decimal(other.type):
        number = value.as_py()
        if number is not None:
            return pa.scalar(decimal.Decimal(number), pa.decimal128(builtins.max(1, len(str(abs(number)))), 0))
    return value


def _fitted(pa: Any, left: Any, right: Any) -> tuple | None:
    """The operands of a decimal product cast so that its precision is at most 38."""
    lt, rt = left.type, right.type
    if not (pa.types.is_decimal(lt) and pa.types.is_decimal(rt)):
        return None
    wide_left = lt.precision >= rt.precision
    wide, other = (lt, rt) if wide_left else (rt, lt)
    precision = 38 - 1 - other.precision
    if precision <= wide.scale:
        return None
    try:
        cast = (left if wide_left else right).cast(pa.decimal128(precision, wide.scale))  # checked: fails on overflow
    except pa.ArrowInvalid:
        return None
    return (cast, right) if wide_left else (left, cast)


def _widened(pa: Any, values: Any, decimal_type: Any) -> Any:
    t = values.type
    if not pa.types.is_decimal(t):
        return values
    return values.cast(decimal_type(t.precision, t.scale) if decimal_type is not None else pa.float64())


def _floating(pc: Any, values: Any) -> Any:
    """Integers as float64 (``/`` is true division, as in Python and SQL)."""
    import pyarrow as pa

    t = values.type
    if pa.types.is_integer(t) or pa.types.is_null(t):
        return pc.cast(values, pa.float64())
    return values


def _without_empty(pa: Any, pc: Any, lists: Any) -> Any:
    """Whitespace split of trimmed strings, as ``str.split()``: a blank string gives [], not
    [""] (the only empty part left after trimming)."""
    if isinstance(lists, pa.ChunkedArray):
        return pa.chunked_array([_without_empty(pa, pc, c) for c in lists.chunks], type=lists.type)
    if isinstance(lists, pa.Scalar):
        return lists if not lists.is_valid else pa.scalar([w for w in lists.as_py() if w], lists.type)
    lengths = pc.list_value_length(lists)
    blank = pc.and_(pc.equal(lengths, 1), pc.equal(pc.list_element(lists, 0), ""))
    if not pc.any(blank).as_py():
        return lists
    empty = pa.scalar([], lists.type)
    return pc.if_else(blank, empty, lists)


def _plain_ascii(pa: Any, values: Any) -> bool:
    """Only ASCII bytes, and none of the separators (0x1c-0x1f) that Python's str.split
    counts as whitespace and Arrow's ASCII kernels do not."""
    import numpy as np

    if isinstance(values, pa.Scalar) or not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        return False
    for chunk in values.chunks if isinstance(values, pa.ChunkedArray) else [values]:
        data = chunk.buffers()[2]
        if data is None:
            continue
        b = np.frombuffer(data, dtype=np.uint8)
        if b.size and (b.max() >= 0x80 or np.count_nonzero((b >= 0x1C) & (b <= 0x1F))):
            return False
    return True


def _is_list(pa: Any, t: Any) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t)


def _value_type(values: Any) -> Any:
    import pyarrow as pa

    t = values.type
    return pa.string() if t == pa.string_view() else t


def _check_literal(value: Any) -> None:
    if not isinstance(value, _LITERALS):
        raise TypeError(
            f"{value!r} ({type(value).__name__}) is not a value a column expression can hold: "
            "use a number, str, bytes, bool, date, datetime, Decimal or None"
        )


def _str_arg(method: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{method}() takes a str, got {value!r}")
    return value


def _expr(value: Any) -> Expr:
    if type(value) is Expr:
        return value
    _check_literal(value)
    return Expr("lit", (value,))


def col(name: str) -> Expr:
    """The column ``name``."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"col() takes a column name, got {name!r}")
    return Expr("col", (name,))


def lit(value: Any) -> Expr:
    """A constant."""
    _check_literal(value)
    return Expr("lit", (value,))


def when(condition: Expr, then: Any, otherwise: Any) -> Expr:
    """``then`` where ``condition`` holds, else ``otherwise`` (SQL's CASE WHEN)."""
    return Expr("when", (_expr(condition), _expr(then), _expr(otherwise)))


def as_expr(value: Any, what: str) -> Expr:
    """A column name or an expression, as an expression."""
    if isinstance(value, str):
        return col(value)
    if type(value) is Expr:
        return value
    raise TypeError(f"{what} takes column names or expressions (plait.data.col(...)), got {value!r}")


# ------------------------------------------------------------------ aggregates
class Agg:
    """An aggregate for ``group_by(...).agg(name=...)``: ``sum``, ``count``, ``mean``,
    ``min``, ``max``. Each runs in two phases: a partial per partition before the
    exchange, and a final one over the partials of each group."""

    __slots__ = ("fn", "expr")
    FUNCTIONS = ("sum", "count", "mean", "min", "max")

    def __init__(self, fn: str, expr: Expr | None) -> None:
        self.fn, self.expr = fn, expr

    def __str__(self) -> str:
        return f"{self.fn}({'' if self.expr is None else self.expr})"

    __repr__ = __str__

    def __reduce__(self) -> Any:
        return (Agg, (self.fn, self.expr))


def _agg(fn: str, column: Any) -> Agg:
    return Agg(fn, as_expr(column, f"{fn}()"))


def sum(column: Any) -> Agg:  # noqa: A001 - plait.data.sum, as in SQL
    return _agg("sum", column)


def mean(column: Any) -> Agg:
    return _agg("mean", column)


def min(column: Any) -> Agg:  # noqa: A001
    return _agg("min", column)


def max(column: Any) -> Agg:  # noqa: A001
    return _agg("max", column)


def count(column: Any = None) -> Agg:
    """The rows of each group; with a column, its values that are not null."""
    return Agg("count", None if column is None else as_expr(column, "count()"))


class SortKey:
    """An ``order_by``'s columns and their directions (nulls last, as in DuckDB)."""

    __slots__ = ("names", "descending")

    def __init__(self, names: tuple[str, ...], descending: tuple[bool, ...]) -> None:
        self.names, self.descending = names, descending

    def __str__(self) -> str:
        return ", ".join(f"{n} DESC" if d else n for n, d in zip(self.names, self.descending, strict=True))

    def __reduce__(self) -> Any:
        return (SortKey, (self.names, self.descending))
