"""Membership rules: parsed from YAML data, type-checked against a source, compiled to SQL.

A rule is data, never code: ``all`` / ``any`` / ``not`` combinators over comparisons
``{attribute: X, <op>: value}``. One rule compiles to ONE parameterised predicate (``?``
placeholders, quoted identifiers) so a whole customer table is filtered in one pass.

Semantics (two-valued): a comparison on a missing (null) attribute is false, and ``not`` inverts
the result — so ``not: {attribute: region, eq: north}`` holds for a customer without a region,
while ``{attribute: region, ne: north}`` does not. ``exists`` tests for a value; ``matches`` finds
a regular expression anywhere in the value (anchor with ``^``/``$``).

The operator table :data:`OPERATORS` is the one place that spells each comparison in SQL (the
same in every dialect); a :class:`Dialect` holds only what differs between engines: identifier
quoting, placeholders, casts, and how "find the pattern anywhere" is spelled, with the pattern
re-spelled for the engine's regex flavour (see :mod:`.patterns`). Another engine is one more
``Dialect`` value.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from .patterns import Flavor, render_pattern

__all__ = [
    "COMBINATORS",
    "DUCKDB",
    "OPERATORS",
    "SPARK",
    "AllOf",
    "AnyOf",
    "Compare",
    "Dialect",
    "NodePath",
    "Not",
    "Rule",
    "attributes",
    "check_rule",
    "column_kind",
    "compile_rule",
    "parse_rule",
    "render_rule",
]

#: where a value sits in the YAML document (keys and list indexes), for located problems
NodePath = tuple[str | int, ...]
Kind = Literal["number", "text", "boolean", "date", "timestamp", "other"]
Arity = Literal["scalar", "list", "flag", "pattern"]
Report = Callable[[NodePath, str], None]


@dataclass(frozen=True, slots=True)
class Operator:
    """One comparison operator: how it reads, what it takes, which column kinds it applies to."""

    name: str
    symbol: str
    arity: Arity
    kinds: frozenset[Kind]
    #: SQL template, the same in every dialect (``{col}``, ``{val}`` or ``{vals}``); "" when the
    #: dialect spells it (``matches``) or for ``exists``
    sql: str = ""


_ORDERED: frozenset[Kind] = frozenset({"number", "text", "date", "timestamp"})
_EQUATABLE: frozenset[Kind] = _ORDERED | {"boolean"}
_ANY: frozenset[Kind] = _EQUATABLE | {"other"}

#: The comparison operators (dialect-independent facts).
OPERATORS: Mapping[str, Operator] = {
    op.name: op
    for op in (
        Operator("eq", "=", "scalar", _EQUATABLE, "{col} = {val}"),
        Operator("ne", "!=", "scalar", _EQUATABLE, "{col} <> {val}"),
        Operator("lt", "<", "scalar", _ORDERED, "{col} < {val}"),
        Operator("lte", "<=", "scalar", _ORDERED, "{col} <= {val}"),
        Operator("gt", ">", "scalar", _ORDERED, "{col} > {val}"),
        Operator("gte", ">=", "scalar", _ORDERED, "{col} >= {val}"),
        Operator("in", "in", "list", _EQUATABLE, "{col} IN ({vals})"),
        Operator("not_in", "not in", "list", _EQUATABLE, "{col} NOT IN ({vals})"),
        Operator("exists", "exists", "flag", _ANY),
        Operator("matches", "matches", "pattern", frozenset({"text"})),
    )
}
COMBINATORS = ("all", "any", "not")


@dataclass(frozen=True, slots=True)
class Compare:
    attribute: str
    op: str
    value: Any
    node: NodePath


@dataclass(frozen=True, slots=True)
class AllOf:
    items: tuple[Rule, ...]
    node: NodePath


@dataclass(frozen=True, slots=True)
class AnyOf:
    items: tuple[Rule, ...]
    node: NodePath


@dataclass(frozen=True, slots=True)
class Not:
    item: Rule
    node: NodePath


Rule: TypeAlias = Compare | AllOf | AnyOf | Not


# --- parsing ------------------------------------------------------------------------------------


def parse_rule(data: Any, node: NodePath, report: Report, *, root: bool = False) -> Rule | None:
    """Build a :class:`Rule` from schema-valid data; report shape problems, return None on any."""
    if not isinstance(data, Mapping):
        report(node, "a rule must be a mapping")
        return None
    keys = [k for k in data if not (root and k == "source")]
    combinators = [k for k in keys if k in COMBINATORS]
    ops = [k for k in keys if k in OPERATORS]
    if combinators:
        if len(keys) != 1:
            report(
                node,
                f"a rule node has exactly one of all, any, not; found {', '.join(map(str, keys))}",
            )
            return None
        kind = combinators[0]
        if kind == "not":
            inner = parse_rule(data["not"], (*node, "not"), report)
            return None if inner is None else Not(inner, node)
        raw = data[kind]
        items = [parse_rule(item, (*node, kind, i), report) for i, item in enumerate(raw)]
        if any(item is None for item in items):
            return None
        parsed = tuple(item for item in items if item is not None)
        return AllOf(parsed, node) if kind == "all" else AnyOf(parsed, node)
    if "attribute" in keys:
        if len(ops) != 1:
            found = ", ".join(ops) if ops else "none"
            report(
                node,
                "a comparison has an attribute and exactly one operator "
                f"({', '.join(OPERATORS)}); found {found}",
            )
            return None
        return Compare(str(data["attribute"]), ops[0], data[ops[0]], node)
    if ops:
        report(node, f"operator {ops[0]} needs an attribute")
        return None
    report(node, "a rule needs all, any, not, or an attribute with an operator")
    return None


def attributes(rule: Rule) -> set[str]:
    """Every attribute a rule reads."""
    if isinstance(rule, Compare):
        return {rule.attribute}
    if isinstance(rule, Not):
        return attributes(rule.item)
    out: set[str] = set()
    for item in rule.items:
        out |= attributes(item)
    return out


def _compares(rule: Rule) -> list[Compare]:
    if isinstance(rule, Compare):
        return [rule]
    if isinstance(rule, Not):
        return _compares(rule.item)
    return [c for item in rule.items for c in _compares(item)]


# --- type checking ------------------------------------------------------------------------------

_NUMBER_TYPES = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
    "FLOAT",
    "DOUBLE",
    "REAL",
    "DECIMAL",
    "NUMERIC",
    "INT",
    "VARINT",
)


def column_kind(sql_type: str) -> Kind:
    """DuckDB type name → the kind of values a rule may compare it with."""
    base = sql_type.upper().split("(", 1)[0].strip()
    if base in _NUMBER_TYPES:
        return "number"
    if base in ("VARCHAR", "TEXT", "STRING") or base.startswith("VARCHAR"):
        return "text"
    if base == "BOOLEAN":
        return "boolean"
    if base == "DATE":
        return "date"
    if base.startswith("TIMESTAMP"):
        return "timestamp"
    return "other"


def _value_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    return type(value).__name__


def _fits(kind: Kind, value: Any) -> bool:
    vk = _value_kind(value)
    if kind in ("date", "timestamp"):
        if not isinstance(value, str):
            return False
        try:
            if kind == "date":
                dt.date.fromisoformat(value)
            else:
                dt.datetime.fromisoformat(value)
        except ValueError:
            return False
        return True
    return vk == kind


def check_rule(
    rule: Rule,
    columns: Mapping[str, str],
    report: Report,
    *,
    source: str,
    check_regex: Callable[[str], str | None],
) -> None:
    """Report attributes missing from ``columns`` and operator/value/column-type mismatches."""
    for cmp in _compares(rule):
        attr_node = (*cmp.node, "attribute")
        value_node = (*cmp.node, cmp.op)
        if cmp.attribute not in columns:
            close = difflib.get_close_matches(cmp.attribute, list(columns), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            report(attr_node, f"source {source!r} has no column {cmp.attribute!r}{hint}")
            continue
        sql_type = columns[cmp.attribute]
        kind = column_kind(sql_type)
        op = OPERATORS[cmp.op]
        if kind not in op.kinds:
            report(
                value_node,
                f"{cmp.op} cannot apply to column {cmp.attribute!r} of type {sql_type}",
            )
            continue
        if op.arity == "pattern":
            error = check_regex(cmp.value)
            if error is not None:
                report(value_node, f"invalid regular expression {cmp.value!r}: {error}")
            continue
        if op.arity == "flag":
            continue
        values = cmp.value if op.arity == "list" else [cmp.value]
        for i, value in enumerate(values):
            if not _fits(kind, value):
                where = (*value_node, i) if op.arity == "list" else value_node
                expected = {"date": "an ISO date string", "timestamp": "an ISO timestamp string"}
                expected.update(number="a number", text="text", boolean="true or false")
                want = expected.get(kind, kind)
                report(
                    where,
                    f"{cmp.op}: column {cmp.attribute!r} is {sql_type}, so the value must be "
                    f"{want}, not {_value_kind(value)} {json.dumps(value)}",
                )


# --- SQL generation -----------------------------------------------------------------------------


_CASTS: Mapping[str, str] = {"date": "CAST({p} AS DATE)", "timestamp": "CAST({p} AS TIMESTAMP)"}


@dataclass(frozen=True, slots=True)
class Dialect:
    """What one SQL engine spells its own way; the comparisons come from :data:`OPERATORS`."""

    name: str
    #: "the pattern ``{val}`` is found anywhere in ``{col}``" (never a whole-string match)
    matches: str
    #: the regex flavour the pattern parameter is re-spelled for
    flavor: Flavor
    #: identifier quote character (doubled inside an identifier)
    quote_char: str = '"'
    placeholder: str = "?"
    #: how a parameter is cast to a column kind (``{p}`` is the placeholder)
    casts: Mapping[str, str] = field(default_factory=lambda: _CASTS)
    null_false: str = "COALESCE({expr}, FALSE)"
    exists_true: str = "{col} IS NOT NULL"
    exists_false: str = "{col} IS NULL"

    def quote(self, identifier: str) -> str:
        q = self.quote_char
        return q + identifier.replace(q, q + q) + q

    def param(self, kind: Kind) -> str:
        template = self.casts.get(kind)
        return template.format(p=self.placeholder) if template else self.placeholder

    def template(self, op: str) -> str:
        return OPERATORS[op].sql or self.matches


#: DuckDB: ``regexp_matches`` finds anywhere (``~`` and ``regexp_full_match`` match the whole value)
DUCKDB = Dialect(name="duckdb", matches="regexp_matches({col}, {val})", flavor="re2")
#: Spark SQL: ``RLIKE`` is ``java.util.regex.Matcher.find`` (anywhere)
SPARK = Dialect(name="spark", matches="{col} RLIKE {val}", flavor="java", quote_char="`")


def compile_rule(
    rule: Rule, columns: Mapping[str, str], dialect: Dialect = DUCKDB
) -> tuple[str, list[Any]]:
    """One boolean SQL predicate (never null) and its parameters, in placeholder order."""
    params: list[Any] = []

    def walk(node: Rule) -> str:
        if isinstance(node, AllOf):
            return "(" + " AND ".join(walk(i) for i in node.items) + ")"
        if isinstance(node, AnyOf):
            return "(" + " OR ".join(walk(i) for i in node.items) + ")"
        if isinstance(node, Not):
            return f"(NOT {walk(node.item)})"
        col = dialect.quote(node.attribute)
        kind = column_kind(columns.get(node.attribute, "VARCHAR"))
        op = OPERATORS[node.op]
        if op.arity == "flag":
            template = dialect.exists_true if node.value else dialect.exists_false
            return "(" + template.format(col=col) + ")"
        if op.arity == "list":
            values = list(node.value)
            params.extend(values)
            vals = ", ".join(dialect.param(kind) for _ in values)
            expr = dialect.template(node.op).format(col=col, vals=vals)
        else:
            value = node.value
            if op.arity == "pattern":
                value = render_pattern(value, dialect.flavor)
            params.append(value)
            expr = dialect.template(node.op).format(col=col, val=dialect.param(kind))
        return dialect.null_false.format(expr=expr)

    return walk(rule), params


def render_rule(rule: Rule) -> str:
    """A human rendering, e.g. ``weekly_spend_percentile >= 85 and (visits >= 1 or not ...)``."""

    def walk(node: Rule, nested: bool) -> str:
        if isinstance(node, AllOf | AnyOf):
            joiner = " and " if isinstance(node, AllOf) else " or "
            text = joiner.join(walk(i, True) for i in node.items)
            return f"({text})" if nested and len(node.items) > 1 else text
        if isinstance(node, Not):
            return f"not {walk(node.item, True)}"
        op = OPERATORS[node.op]
        if op.arity == "flag":
            return f"{node.attribute} {'exists' if node.value else 'is missing'}"
        if op.arity == "pattern":
            return f"{node.attribute} matches /{node.value}/"
        return f"{node.attribute} {op.symbol} {json.dumps(node.value)}"

    return walk(rule, False)
