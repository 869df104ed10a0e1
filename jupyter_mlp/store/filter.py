"""The filter language for listing runs, compiled into parameterised SQL (never string-built values).

    metrics.acc > 0.9 and params.lr <= 0.01 and status = finished
    (tags ~ baseline or name ~ "digits v2") and not status = failed
    resnet                      -- free text: name, tags or id contain it

Fields: `metrics.K`, `params.K`, `outputs.K` (K may be quoted: `metrics."val acc"`) and the run
columns below. Operators: = == != < <= > >= and ~ / !~ (contains). Values: numbers, quoted strings,
bare words, true/false, null.

Bounded: at most FILTER_MAX characters, FILTER_TERMS_MAX terms and FILTER_DEPTH_MAX levels of
parentheses / `not` (records.py); past them a FilterError names the position, so no filter can
exhaust the parser's stack or SQLite's expression limits.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from ..model import STATUSES, close_names
from ..records import FILTER_DEPTH_MAX, FILTER_MAX, FILTER_TERMS_MAX
from .db import SQLITE, Dialect

# column name in the language -> SQL expression over `runs`
COLUMNS = {
    "id": "runs.id",
    "name": "runs.name",
    "project": "runs.project",
    "status": "runs.status",
    "kind": "runs.kind",
    "parent": "runs.parent_id",
    "parent_id": "runs.parent_id",
    "pipeline_run": "runs.pipeline_run_id",
    "stage": "runs.stage",
    "sweep": "runs.sweep_id",
    "notebook": "runs.notebook",
    "host": "runs.host",
    "user": 'runs."user"',  # a reserved word on PostgreSQL
    "owner": "runs.owner",
    "kernel": "runs.kernel",
    "pinned": "runs.pinned",
    "tags": "runs.tags",
    "created_at": "runs.created_at",
    "started_at": "runs.started_at",
    "ended_at": "runs.ended_at",
    "duration": "(COALESCE(runs.ended_at, runs.heartbeat_at) - runs.started_at)",
}
# Columns that hold numbers (the others hold text): PostgreSQL compares only like with like, so
# a value of the other kind is compared as SQLite compares it (see _Parser.compare).
NUMERIC_COLUMNS = {"pinned", "created_at", "started_at", "ended_at", "duration"}
RECORDS = {"metrics", "params", "outputs"}
_NUMBER = re.compile(r"\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*$")
OPS = {
    "=": "=",
    "==": "=",
    "!=": "!=",
    "<": "<",
    "<=": "<=",
    ">": ">",
    ">=": ">=",
    "~": "~",
    "!~": "!~",
}

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<date>\d{4}-\d{2}-\d{2}(?:[T\ ]\d{2}:\d{2}(?::\d{2})?)?(?![\w.:-]))
  | (?P<num>[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?![\w.]))
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<op>==|!=|<=|>=|!~|=|<|>|~)
  | (?P<lp>\()
  | (?P<rp>\))
  | (?P<word>[A-Za-z_][\w\-/:]*(?:\.(?:[\w\-/:.]+|"(?:[^"\\]|\\.)*"))?)
  """,
    re.VERBOSE,
)


class FilterError(ValueError):
    """A malformed filter; `position` is the 0-based character offset of the problem. The text
    says "at character N" with N = position + 1 (1-based), the number the runs panel shows."""

    field = "filter"  # the request's part it is about

    def __init__(self, message: str, position: int, unknown: str | None = None) -> None:
        super().__init__(f"{message} (at character {position + 1})")
        self.message = message
        self.position = position
        self.unknown = unknown  # a bare field name that is no column (a record key, perhaps)


class SortError(FilterError):
    """A sort the runs cannot take (one field: no position to point at)."""

    field = "sort"

    def __init__(self, message: str) -> None:
        ValueError.__init__(self, message)
        self.message = message
        self.position = 0


@dataclass
class Token:
    kind: str
    text: str
    pos: int


def tokenize(expr: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m:
            raise FilterError(f"unexpected character {expr[pos]!r}", pos)
        kind = m.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, m.group(), pos))
        pos = m.end()
    return tokens


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])


class _Parser:
    def __init__(
        self, expr: str, dialect: Dialect = SQLITE, absent: Collection[tuple[str, str]] = ()
    ) -> None:
        self.dialect = dialect
        self.absent = absent
        if len(expr) > FILTER_MAX:
            raise FilterError(
                f"the filter is {len(expr):,} characters long (at most {FILTER_MAX:,})", FILTER_MAX
            )
        self.expr = expr
        self.tokens = tokenize(expr)
        self.i = 0
        self.args: list[object] = []
        self.terms = 0
        self.depth = 0

    def nest(self, tok: Token) -> None:
        self.depth += 1
        if self.depth > FILTER_DEPTH_MAX:
            raise FilterError(f"nested deeper than {FILTER_DEPTH_MAX} levels", tok.pos)

    def term(self, tok: Token) -> None:
        self.terms += 1
        if self.terms > FILTER_TERMS_MAX:
            raise FilterError(f"more than {FILTER_TERMS_MAX} terms", tok.pos)

    def peek(self, offset: int = 0) -> Token | None:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else None

    def take(self) -> Token:
        tok = self.peek()
        if tok is None:
            raise FilterError("unexpected end of filter", len(self.expr))
        self.i += 1
        return tok

    def is_word(self, tok: Token | None, *words: str) -> bool:
        return tok is not None and tok.kind == "word" and tok.text.lower() in words

    def parse(self) -> str:
        if not self.tokens:
            return "1 = 1"
        sql = self.or_expr()
        tok = self.peek()
        if tok is not None:
            raise FilterError(f"unexpected {tok.text!r}", tok.pos)
        return sql

    def or_expr(self) -> str:
        parts = [self.and_expr()]
        while self.is_word(self.peek(), "or"):
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def and_expr(self) -> str:
        parts = [self.not_expr()]
        while True:
            tok = self.peek()
            if self.is_word(tok, "and"):
                self.take()
            elif tok is None or tok.kind == "rp" or self.is_word(tok, "or"):
                break
            # two terms side by side mean "and" (free text: `resnet baseline`)
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def not_expr(self) -> str:
        if self.is_word(self.peek(), "not"):
            tok = self.take()
            self.nest(tok)
            sql = f"(NOT {self.not_expr()})"
            self.depth -= 1
            return sql
        return self.atom()

    def atom(self) -> str:
        tok = self.take()
        if tok.kind == "lp":
            self.nest(tok)
            sql = self.or_expr()
            close = self.peek()
            if close is None or close.kind != "rp":
                raise FilterError("missing ')'", close.pos if close else len(self.expr))
            self.take()
            self.depth -= 1
            return sql
        if tok.kind in ("word", "str", "num", "date"):
            self.term(tok)
            nxt = self.peek()
            if nxt is not None and nxt.kind == "op":
                if tok.kind != "word":
                    raise FilterError(f"expected a field name before {nxt.text!r}", tok.pos)
                self.take()
                return self.comparison(tok, nxt)
            return self.free_text(tok)
        raise FilterError(f"unexpected {tok.text!r}", tok.pos)

    def value(self) -> tuple[object, bool]:
        """The literal after an operator; returns (value, is_number)."""
        tok = self.peek()
        if tok is None:
            raise FilterError("expected a value", len(self.expr))
        if tok.kind not in ("num", "str", "word", "date"):
            raise FilterError(f"expected a value, got {tok.text!r}", tok.pos)
        self.take()
        if tok.kind == "num":
            return float(tok.text), True
        if tok.kind == "date":  # a local date (and time): the seconds the store keeps
            import datetime

            try:
                return datetime.datetime.fromisoformat(tok.text).timestamp(), True
            except ValueError:
                raise FilterError(f"{tok.text!r} is not a date", tok.pos) from None
        if tok.kind == "str":
            return _unquote(tok.text), False
        low = tok.text.lower()
        if low in ("true", "false"):
            return (1.0 if low == "true" else 0.0), True
        if low in ("null", "none"):
            return None, False
        return tok.text, False

    def comparison(self, field: Token, op_tok: Token) -> str:
        op = OPS[op_tok.text]
        after = self.peek()
        value_pos = after.pos if after is not None else op_tok.pos + len(op_tok.text)
        value, is_num = self.value()
        head, _, key = field.text.partition(".")
        head_low = head.lower()
        if key and head_low in RECORDS:
            if key.startswith('"'):
                key = _unquote(key)
            return self.record_comparison(head_low, key, op, value, is_num, value_pos)
        if key or head_low not in COLUMNS:
            known = ", ".join(sorted(COLUMNS)) + ", metrics.NAME, params.NAME, outputs.NAME"
            close = [] if key else close_names(head_low, sorted(COLUMNS), n=1)
            guess = f"; did you mean {close[0]}?" if close else ""
            raise FilterError(f"unknown field {field.text!r}{guess} (known: {known})", field.pos,
                              unknown=None if key else field.text)  # fmt: skip
        column = COLUMNS[head_low]
        if (
            head_low in NUMERIC_COLUMNS and head_low != "pinned" and op not in ("~", "!~")
            and isinstance(value, str) and not _NUMBER.match(value)
        ):  # fmt: skip
            # a word here would compare as text and match nothing (or everything), silently
            dates = "dates (2026-01-02, 2026-01-02T12:30) or " if head_low != "duration" else ""
            raise FilterError(f"{head_low} compares with {dates}numbers, not {value!r}", value_pos)
        if head_low == "status" and isinstance(value, str) and op in ("=", "!="):
            if value not in STATUSES:  # a typo would match nothing, silently
                close = close_names(value, STATUSES)
                raise FilterError(
                    f"{value!r} is not a run status ({', '.join(STATUSES)})"
                    + (f"; did you mean {close[0]}?" if close else ""),
                    value_pos,
                )
        if head_low == "tags" and op in ("=", "!="):
            # membership in the JSON list
            self.args.append(value)
            test = self.dialect.json_array_has("runs.tags")
            return test if op == "=" else f"NOT {test}"
        if head_low == "pinned" and not is_num and isinstance(value, str):
            raise FilterError("pinned takes true or false", value_pos)
        if self.dialect is not SQLITE and value is not None and op not in ("~", "!~"):
            numeric = head_low in NUMERIC_COLUMNS
            if numeric and isinstance(value, str):  # a number in quotes (a word is refused)
                value = float(value)
            elif not numeric and not isinstance(value, str):
                value = _sqlite_text(value)  # SQLite gives the number the column's TEXT affinity
        real = head_low in NUMERIC_COLUMNS and head_low != "pinned"
        return self.compare(column, op, value, value_pos, real)

    def record_comparison(
        self, table: str, key: str, op: str, value: object, is_num: bool, pos: int
    ) -> str:
        if table == "metrics":
            if not is_num and value is not None:
                raise FilterError(f"metrics.{key} compares with numbers", pos)
            source, key_col, column = "metrics_latest", "key", "value"
        else:
            source, key_col = table, ("name" if table == "outputs" else "key")
            column = "num" if is_num else "text"
        real = column in ("num", "value")
        if (table, key) in self.absent:  # no run has it: what the subquery gives every run
            sub = f"CAST(NULL AS {'DOUBLE PRECISION' if real else 'TEXT'})"
        else:
            self.args.append(key)
            sub = (
                f"(SELECT {column} FROM {source} AS r WHERE r.run_id = runs.id AND r.{key_col} = ?)"
            )
        return self.compare(sub, op, value, pos, real)

    def compare(self, column: str, op: str, value: object, pos: int, real: bool = False) -> str:
        """`column op value`; `real`: the column holds floating point numbers."""
        if value is None:
            if op not in ("=", "!="):
                raise FilterError("null only compares with = or !=", pos)
            return f"{column} IS {'NOT ' if op == '!=' else ''}NULL"
        if op in ("~", "!~"):
            self.args.append(f"%{_escape_like(_sqlite_text(value))}%")
            like = f"{'NOT ' if op == '!~' else ''}{self.dialect.like}"
            return f"{self.dialect.like_text(column, real)} {like} ? ESCAPE '\\'"
        self.args.append(value)
        return f"{column} {op} ?"

    def free_text(self, tok: Token) -> str:
        text = _unquote(tok.text) if tok.kind == "str" else tok.text
        pattern = f"%{_escape_like(text)}%"
        self.args.extend([pattern, pattern, text + "%"])
        like = self.dialect.like
        return f"(runs.name {like} ? ESCAPE '\\' OR runs.tags {like} ? ESCAPE '\\' OR runs.id {like} ?)"


def _sqlite_text(value: object) -> str:
    """A value as SQLite's text of it (1.0 -> '1.0', as str() writes a float)."""
    return str(value)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def record_fields(expr: str | None) -> list[tuple[str, str]]:
    """The `metrics.K` / `params.K` / `outputs.K` fields a filter compares, as (table, key) in
    order of appearance (each once); [] for a filter that does not tokenize."""
    try:
        tokens = tokenize(expr or "")
    except FilterError:
        return []
    found: list[tuple[str, str]] = []
    for tok, nxt in zip(tokens, tokens[1:]):
        if tok.kind != "word" or nxt.kind != "op":
            continue
        head, _, key = tok.text.partition(".")
        if key and head.lower() in RECORDS:
            field = (head.lower(), _unquote(key) if key.startswith('"') else key)
            if field not in found:
                found.append(field)
    return found


def compile_filter(
    expr: str | None, dialect: Dialect = SQLITE, absent: Collection[tuple[str, str]] = ()
) -> tuple[str, list[object]]:
    """Filter text -> (SQL boolean expression over `runs`, its parameters) in `dialect` (the
    same answers on both engines). `absent`: (table, key) of record fields no run has (a NULL
    then, as the subquery would give every run, without a million lookups: a misspelt metric
    answers at once). Raises FilterError."""
    parser = _Parser(expr or "", dialect, absent)
    sql = parser.parse()
    return sql, parser.args
