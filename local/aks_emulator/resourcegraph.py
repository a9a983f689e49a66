"""Azure Resource Graph's `resources` query, for the query shapes the scaler sends.

`POST /providers/Microsoft.ResourceGraph/resources` takes `{"subscriptions"?, "managementGroups"?,
"query", "options"?: {"$top", "$skip", "$skipToken", "resultFormat"}}` and answers
`{"totalRecords", "count", "data", "facets", "resultTruncated", "$skipToken"?}` like the service
(REST API 2021-03-01 and later, which `azure-mgmt-resourcegraph` 8.x calls).

The emulator holds only managed clusters, so it understands a small part of KQL:

    resources
    | where type =~ 'microsoft.containerservice/managedclusters'
    | where (tags['scaler-schedule'] =~ 'office-hours') or (tags['team'] =~ 'data')
    | project id, subscriptionId, resourceGroup, name, tags
    | order by id asc

`where` stages (one of them a plain `type` comparison) with `==` / `=~` comparisons of a column
or of `tags['key']` / `tags.key` to a string literal, joined by `and` / `or` with parentheses;
`project` of known columns; `order by` / `sort by` string columns (`desc` unless `asc`, as in
KQL). String literals use single or double quotes with `\\'`, `\\"`, `\\\\`, `\\n`, `\\t`, `\\r`
escapes. Tag names match case-insensitively (Azure tag names are). Anything else is a 400 in
Resource Graph's error shape (`BadRequest`, details `InvalidQuery` and what the emulator
stopped at).

Like the service: `resourceGroup` is lower-case, `type` is lower-case, `id` spells
`resourceGroups`; paging (`$skipToken`) needs `id` among the columns (without it a longer
result is cut at the page and `resultTruncated` is "true"); a `$skipToken` only works with the
same query and scope as the request that gave it.

Pure model: no I/O and no locking; callers hold the emulator's lock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .state import AksState, Cluster

RESOURCE_GRAPH_PATH = re.compile(
    r"^/providers/microsoft\.resourcegraph/resources/?$", re.IGNORECASE
)
CLUSTER_TYPE = "microsoft.containerservice/managedclusters"
# The columns a cluster row has, in the order answered without `project`.
COLUMNS: dict[str, str] = {
    "id": "string",
    "name": "string",
    "type": "string",
    "location": "string",
    "resourceGroup": "string",
    "subscriptionId": "string",
    "tags": "object",
}
MAX_TOP = 1000
INVALID_QUERY = (
    "Query is invalid. Please refer to the documentation for the Azure Resource Graph service "
    "and fix the error before retrying."
)
KEYWORDS = {"where", "project", "order", "sort", "by", "asc", "desc", "and", "or"}
_ESCAPES = {"'": "'", '"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r"}


def resource_graph_error(code: str, details: list[dict[str, Any]]) -> dict[str, Any]:
    """Resource Graph's error body: a support line as the message, what went wrong in details."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {
        "error": {
            "code": code,
            "message": "Please provide below info when asking for support: "
            f"timestamp = {stamp}, correlationId = {uuid.uuid4()}.",
            "details": details,
        }
    }


class QueryRefused(Exception):
    """A request the emulator answers with 400 (`body()` is Resource Graph's error shape)."""

    def __init__(self, details: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(str(d.get("message")) for d in details))
        self.details = details

    def body(self) -> dict[str, Any]:
        return resource_graph_error("BadRequest", self.details)


def bad_request(code: str, message: str) -> QueryRefused:
    return QueryRefused([{"code": code, "message": message}])


# --- lexer -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    kind: str  # "ident", "string", "op", "end"
    value: str
    pos: int


_OPERATORS = ("=~", "==", "|", "(", ")", "[", "]", ",", ".")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _Text:
    def __init__(self, text: str) -> None:
        self.text = text

    def where(self, pos: int) -> dict[str, Any]:
        line = self.text.count("\n", 0, pos) + 1
        column = pos - (self.text.rfind("\n", 0, pos) + 1)
        return {"line": line, "characterPositionInLine": column}

    def refuse(self, code: str, message: str, token: Token | None, pos: int) -> QueryRefused:
        detail: dict[str, Any] = {"code": code, "message": message, **self.where(pos)}
        if token is not None and token.kind != "end":
            detail["token"] = token.value if token.kind != "string" else repr(token.value)
        return QueryRefused([{"code": "InvalidQuery", "message": INVALID_QUERY}, detail])


def tokenize(text: str) -> list[Token]:
    source = _Text(text)
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char.isspace():
            i += 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
        elif char in "'\"":
            value, end = _string(source, i)
            tokens.append(Token("string", value, i))
            i = end
        elif (match := _IDENT.match(text, i)) is not None:
            tokens.append(Token("ident", match.group(), i))
            i = match.end()
        else:
            # Characters the emulator has no use for become one-character tokens: the parser
            # then names the first thing it does not understand, in its place.
            op = next((o for o in _OPERATORS if text.startswith(o, i)), char)
            tokens.append(Token("op", op, i))
            i += len(op)
    tokens.append(Token("end", "", len(text)))
    return tokens


def _string(source: _Text, start: int) -> tuple[str, int]:
    text, quote = source.text, source.text[start]
    out: list[str] = []
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == quote:
            return "".join(out), i + 1
        if char == "\n":
            break
        if char == "\\":
            escaped = text[i + 1] if i + 1 < len(text) else ""
            if escaped not in _ESCAPES:
                raise source.refuse(
                    "ParserFailure", f"Unknown escape '\\{escaped}' in a string literal.", None, i
                )
            out.append(_ESCAPES[escaped])
            i += 2
            continue
        out.append(char)
        i += 1
    raise source.refuse("ParserFailure", "Unterminated string literal.", None, start)


# --- parser ----------------------------------------------------------------------------------

# Expressions: ("or", [expr, ...]), ("and", [expr, ...]), ("cmp", operator, operand, literal)
# where operand is ("column", name) or ("tag", key).
Expr = tuple[Any, ...]


@dataclass
class Query:
    stages: list[tuple[str, Any]]  # ("where", Expr), ("project", [col]), ("order", [(col, desc)])


class _Parser:
    def __init__(self, text: str) -> None:
        self.source = _Text(text)
        self.tokens = tokenize(text)
        self.i = 0

    @property
    def token(self) -> Token:
        return self.tokens[self.i]

    def refuse(self, message: str, code: str = "ParserFailure") -> QueryRefused:
        return self.source.refuse(code, message, self.token, self.token.pos)

    def unsupported(self, message: str) -> QueryRefused:
        return self.refuse(message, "UnsupportedQuery")

    def accept(self, kind: str, value: str | None = None) -> Token | None:
        token = self.token
        if token.kind == kind and (value is None or token.value == value):
            self.i += 1
            return token
        return None

    def expect(self, kind: str, value: str | None = None, what: str = "") -> Token:
        token = self.accept(kind, value)
        if token is None:
            raise self.refuse(f"Expected {what or value or kind}.")
        return token

    def parse(self) -> Query:
        table = self.expect("ident", what="a table name")
        if table.value.lower() != "resources":
            self.i -= 1
            raise self.unsupported("The emulator has only the 'resources' table.")
        stages: list[tuple[str, Any]] = []
        while self.accept("op", "|"):
            operator = self.expect("ident", what="a query operator")
            if operator.value == "where":
                stages.append(("where", self.or_expr()))
            elif operator.value == "project":
                stages.append(("project", self.columns()))
            elif operator.value in ("order", "sort"):
                self.expect("ident", "by", "'by'")
                stages.append(("order", self.sort_keys()))
            else:
                self.i -= 1
                raise self.unsupported(
                    "The emulator understands the operators where, project and order by / sort by."
                )
        if self.token.kind != "end":
            raise self.refuse("Expected '|' or the end of the query.")
        if not any(stage == "where" and _is_type_filter(expr) for stage, expr in stages):
            raise self.source.refuse(
                "UnsupportedQuery",
                "The emulator holds only managed clusters: filter them with "
                f"`| where type =~ '{CLUSTER_TYPE}'`.",
                None,
                0,
            )
        return Query(stages)

    def column(self) -> str:
        token = self.expect("ident", what="a column name")
        if token.value not in COLUMNS:
            self.i -= 1
            raise self.unsupported(
                f"Unknown column '{token.value}'; the emulator's rows have {list(COLUMNS)} "
                "(column names are case-sensitive)."
            )
        return token.value

    def columns(self) -> list[str]:
        names = [self.column()]
        while self.accept("op", ","):
            names.append(self.column())
        if len(set(names)) != len(names):
            raise self.refuse("A column is projected twice.")
        return names

    def sort_keys(self) -> list[tuple[str, bool]]:
        keys = []
        while True:
            name = self.column()
            if COLUMNS[name] != "string":
                self.i -= 1
                raise self.unsupported(f"The emulator sorts by string columns, not '{name}'.")
            if self.accept("ident", "asc"):
                descending = False
            else:
                descending = True  # KQL sorts descending unless told
                self.accept("ident", "desc")
            keys.append((name, descending))
            if not self.accept("op", ","):
                return keys

    def or_expr(self) -> Expr:
        terms = [self.and_expr()]
        while self.accept("ident", "or"):
            terms.append(self.and_expr())
        return terms[0] if len(terms) == 1 else ("or", terms)

    def and_expr(self) -> Expr:
        terms = [self.primary()]
        while self.accept("ident", "and"):
            terms.append(self.primary())
        return terms[0] if len(terms) == 1 else ("and", terms)

    def primary(self) -> Expr:
        if self.accept("op", "("):
            inner = self.or_expr()
            self.expect("op", ")", "')'")
            return inner
        operand = self.operand()
        operator = self.accept("op", "=~") or self.accept("op", "==")
        if operator is None:
            raise self.unsupported("The emulator compares with '=~' or '==' only.")
        literal = self.expect("string", what="a string literal")
        return ("cmp", operator.value, operand, literal.value)

    def operand(self) -> tuple[str, str]:
        token = self.token
        if token.kind == "ident" and token.value == "tags":
            self.i += 1
            if self.accept("op", "["):
                key = self.expect("string", what="a tag name in quotes").value
                self.expect("op", "]", "']'")
            elif self.accept("op", "."):
                key = self.expect("ident", what="a tag name").value
            else:
                raise self.unsupported("The emulator compares single tags: tags['name'].")
            return ("tag", key)
        if token.kind == "ident" and token.value not in KEYWORDS:
            name = self.column()
            if COLUMNS[name] != "string":
                raise self.unsupported(f"The emulator compares string columns, not '{name}'.")
            return ("column", name)
        raise self.refuse("Expected a column or tags['name'].")


def _is_type_filter(expr: Expr) -> bool:
    return bool(expr[0] == "cmp" and expr[2] == ("column", "type"))


def parse_query(text: str) -> Query:
    return _Parser(text).parse()


# --- evaluation ------------------------------------------------------------------------------


def cluster_row(cluster: Cluster) -> dict[str, Any]:
    """A cluster as Resource Graph shows it (resourceGroup and type lower-case)."""
    return {
        "id": f"/subscriptions/{cluster.subscription}/resourceGroups/{cluster.resource_group}"
        f"/providers/Microsoft.ContainerService/managedClusters/{cluster.name}",
        "name": cluster.name,
        "type": CLUSTER_TYPE,
        "location": cluster.location,
        "resourceGroup": cluster.resource_group.lower(),
        "subscriptionId": cluster.subscription,
        "tags": dict(cluster.tags),
    }


def _tag(tags: dict[str, str], key: str) -> str | None:
    for name, value in tags.items():
        if name.lower() == key.lower():
            return value
    return None


def _matches(expr: Expr, row: dict[str, Any]) -> bool:
    if expr[0] == "or":
        return any(_matches(term, row) for term in expr[1])
    if expr[0] == "and":
        return all(_matches(term, row) for term in expr[1])
    _, operator, (kind, name), literal = expr
    value: str | None = _tag(row["tags"], name) if kind == "tag" else row[name]
    if value is None:
        return False
    if operator == "=~":
        return value.lower() == str(literal).lower()
    return value == str(literal)


def _by(name: str) -> Callable[[dict[str, Any]], str]:
    return lambda row: str(row[name])


def _referenced(expr: Expr) -> set[str]:
    if expr[0] in ("or", "and"):
        return set().union(*(_referenced(term) for term in expr[1]))
    kind, name = expr[2]
    return {"tags" if kind == "tag" else name}


def evaluate(query: Query, rows: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """The output columns and rows of `query` over `rows`."""
    columns = list(COLUMNS)
    for stage, argument in query.stages:
        if stage == "where":
            needed = _referenced(argument)
        elif stage == "project":
            needed = set(argument)
        else:
            needed = {name for name, _ in argument}
        missing = sorted(needed - set(columns))
        if missing:
            raise QueryRefused(
                [
                    {"code": "InvalidQuery", "message": INVALID_QUERY},
                    {
                        "code": "UnsupportedQuery",
                        "message": f"After the earlier project, there is no column {missing}.",
                    },
                ]
            )
        if stage == "where":
            rows = [row for row in rows if _matches(argument, row)]
        elif stage == "project":
            columns = list(argument)
            rows = [{name: row[name] for name in columns} for row in rows]
        else:
            for name, descending in reversed(argument):
                rows = sorted(rows, key=_by(name), reverse=descending)
    return columns, rows


# --- the request -----------------------------------------------------------------------------


def _string_list(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise bad_request("InvalidRequestContent", f"'{key}' must be an array of strings.")
    return value


def _int_option(options: dict[str, Any], key: str, low: int, high: int | None) -> int | None:
    value = options.get(key)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise bad_request("InvalidRequestContent", f"'options.{key}' must be an integer {bounds}.")
    return value


def _scope_digest(query: str, subscriptions: list[str], groups: list[str]) -> str:
    scope = json.dumps([query, sorted(s.lower() for s in subscriptions), sorted(groups)])
    return hashlib.sha256(scope.encode("utf-8")).hexdigest()[:16]


def _encode_token(offset: int, size: int, digest: str) -> str:
    raw = json.dumps({"offset": offset, "size": size, "scope": digest}).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode_token(token: Any, digest: str) -> tuple[int, int]:
    refused = bad_request(
        "InvalidSkipToken",
        "The $skipToken is not valid for this query and scope (pass it back with the same "
        "query, subscriptions and management groups).",
    )
    if not isinstance(token, str) or not token:
        raise refused
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        decoded = json.loads(raw)
        offset, size, scope = decoded["offset"], decoded["size"], decoded["scope"]
    except (ValueError, binascii.Error, KeyError, TypeError):
        raise refused from None
    if scope != digest or not isinstance(offset, int) or not isinstance(size, int):
        raise refused
    return offset, size


def run_query(state: AksState, body: Any, default_page_size: int) -> dict[str, Any]:
    """Answer one `resources` request (raises QueryRefused for a 400)."""
    if not isinstance(body, dict):
        raise bad_request("InvalidRequestContent", "The request body must be a JSON object.")
    query = body.get("query")
    if not isinstance(query, str) or not query.strip():
        raise bad_request("InvalidRequestContent", "'query' must be a non-empty string.")
    subscriptions = _string_list(body, "subscriptions")
    groups = _string_list(body, "managementGroups")
    if body.get("facets"):
        raise bad_request("UnsupportedQuery", "The emulator computes no facets.")
    options = body.get("options") or {}
    if not isinstance(options, dict):
        raise bad_request("InvalidRequestContent", "'options' must be an object.")
    top = _int_option(options, "$top", 1, MAX_TOP)
    skip = _int_option(options, "$skip", 0, None)
    result_format = options.get("resultFormat", "objectArray")
    if not isinstance(result_format, str) or result_format.lower() not in ("objectarray", "table"):
        raise bad_request(
            "InvalidRequestContent", "'options.resultFormat' must be 'objectArray' or 'table'."
        )

    parsed = parse_query(query)
    digest = _scope_digest(query, subscriptions, groups)
    offset, size = 0, default_page_size
    if options.get("$skipToken") is not None:
        offset, size = _decode_token(options["$skipToken"], digest)
    if top is not None:
        size = top
    if skip is not None:
        offset = skip

    # No subscriptions: every subscription the caller can read (management groups included:
    # the emulator has no hierarchy, so any group holds every subscription).
    wanted = {s.lower() for s in subscriptions}
    rows = [
        cluster_row(cluster)
        for cluster in state.clusters.values()
        if not wanted or cluster.subscription.lower() in wanted
    ]
    columns, rows = evaluate(parsed, rows)
    page = rows[offset : offset + size]
    more = offset + len(page) < len(rows)
    pageable = "id" in columns  # the service pages only results that carry `id`
    answer: dict[str, Any] = {
        "totalRecords": len(rows),
        "count": len(page),
        "data": _format(columns, page, result_format.lower() == "table"),
        "facets": [],
        "resultTruncated": "true" if more and not pageable else "false",
    }
    if more and pageable:
        answer["$skipToken"] = _encode_token(offset + len(page), size, digest)
    return answer


def _format(columns: list[str], rows: list[dict[str, Any]], table: bool) -> Any:
    if not table:
        return rows
    return {
        "columns": [{"name": name, "type": COLUMNS[name]} for name in columns],
        "rows": [[row[name] for name in columns] for row in rows],
    }
