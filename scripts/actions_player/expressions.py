"""A small evaluator of GitHub Actions `${{ }}` expressions, for playing workflows locally.

It covers what the workflows here use: contexts (`needs.plan.outputs.matrix`, `matrix.model`,
`github.event.pull_request.number`), literals, `== != && || !`, parentheses, and the functions
fromJSON, toJSON, startsWith, endsWith, contains, format, success, always, failure, cancelled and
hashFiles (which, with no cache to key, is the empty string).
"""

from __future__ import annotations

import json
import re
from typing import Any

from pipelines.errors import UsageError

TOKEN = re.compile(
    r"\s*(?:(?P<num>-?\d+(?:\.\d+)?)|(?P<str>'(?:[^']|'')*')|(?P<op>==|!=|<=|>=|&&|\|\||[!<>()\[\],.*])"
    r"|(?P<name>[A-Za-z_][\w-]*))"
)
EXPR = re.compile(r"\$\{\{(.*?)\}\}", re.S)


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise UsageError(f"expression '{text}': cannot read at '{text[pos : pos + 12]}'")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _truthy(v: Any) -> bool:
    return v not in (None, False, 0, "", -0.0)


def _loose_eq(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    return bool(a == b)


class _Parser:
    def __init__(self, text: str, context: dict[str, Any], status: str) -> None:
        self.text, self.toks, self.i, self.ctx, self.status = text, _tokens(text), 0, context, status

    def peek(self) -> str | None:
        return self.toks[self.i][1] if self.i < len(self.toks) else None

    def take(self, want: str | None = None) -> tuple[str, str]:
        if self.i >= len(self.toks):
            raise UsageError(f"expression '{self.text}': ends early")
        tok = self.toks[self.i]
        if want is not None and tok[1] != want:
            raise UsageError(f"expression '{self.text}': expected '{want}', got '{tok[1]}'")
        self.i += 1
        return tok

    def parse(self) -> Any:
        value = self.or_()
        if self.i != len(self.toks):
            raise UsageError(f"expression '{self.text}': unexpected '{self.peek()}'")
        return value

    def or_(self) -> Any:
        left = self.and_()
        while self.peek() == "||":
            self.take()
            right = self.and_()
            left = left if _truthy(left) else right
        return left

    def and_(self) -> Any:
        left = self.cmp()
        while self.peek() == "&&":
            self.take()
            right = self.cmp()
            left = right if _truthy(left) else left
        return left

    def cmp(self) -> Any:
        left = self.unary()
        while self.peek() in ("==", "!=", "<", ">", "<=", ">="):
            op = self.take()[1]
            right = self.unary()
            if op in ("==", "!="):
                left = _loose_eq(left, right) == (op == "==")
            else:
                left = {"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}[op]
        return left

    def unary(self) -> Any:
        if self.peek() == "!":
            self.take()
            return not _truthy(self.unary())
        return self.postfix(self.primary())

    def postfix(self, value: Any) -> Any:
        while self.peek() in (".", "["):
            if self.take()[1] == ".":
                key = self.take()[1]
                value = value.get(key) if isinstance(value, dict) else None
            else:
                key = self.or_()
                self.take("]")
                if isinstance(value, dict):
                    value = value.get(key)
                elif isinstance(value, list) and isinstance(key, (int, float)) and 0 <= int(key) < len(value):
                    value = value[int(key)]
                else:
                    value = None
        return value

    def primary(self) -> Any:
        kind, tok = self.take()
        if tok == "(":
            value = self.or_()
            self.take(")")
            return value
        if kind == "num":
            return float(tok) if "." in tok else int(tok)
        if kind == "str":
            return tok[1:-1].replace("''", "'")
        if kind != "name":
            raise UsageError(f"expression '{self.text}': unexpected '{tok}'")
        if tok in ("true", "false"):
            return tok == "true"
        if tok == "null":
            return None
        if self.peek() == "(":
            self.take("(")
            args = []
            while self.peek() != ")":
                args.append(self.or_())
                if self.peek() == ",":
                    self.take()
            self.take(")")
            return self.call(tok, args)
        return self.ctx.get(tok)

    def call(self, name: str, args: list[Any]) -> Any:
        fn = name.lower()
        if fn == "fromjson":
            return json.loads(_text(args[0]))
        if fn == "tojson":
            return json.dumps(args[0], indent=2)
        if fn == "startswith":
            return _text(args[0]).lower().startswith(_text(args[1]).lower())
        if fn == "endswith":
            return _text(args[0]).lower().endswith(_text(args[1]).lower())
        if fn == "contains":
            hay, needle = args
            if isinstance(hay, list):
                return any(_loose_eq(x, needle) for x in hay)
            return _text(needle).lower() in _text(hay).lower()
        if fn == "format":
            return re.sub(r"\{(\d+)\}", lambda m: _text(args[1 + int(m.group(1))]), _text(args[0]))
        if fn == "hashfiles":
            return ""
        if fn in ("success", "failure", "cancelled", "always"):
            return {"success": self.status == "success", "failure": self.status == "failure",
                    "cancelled": False, "always": True}[fn]  # fmt: skip
        raise UsageError(f"expression '{self.text}': function {name}() is not supported here")


def evaluate(expr: str, context: dict[str, Any], status: str = "success") -> Any:
    """The value of one expression (without the `${{ }}`)."""
    return _Parser(expr, context, status).parse()


def substitute(text: str, context: dict[str, Any]) -> str:
    """Replace every `${{ ... }}` in a string with its value, as the runner does before a step runs."""
    return EXPR.sub(lambda m: _text(evaluate(m.group(1), context)), text)


def condition(expr: str | bool | None, context: dict[str, Any], status: str = "success") -> bool:
    """An `if:`; like GitHub, a condition without a status function means `success() && (...)`."""
    if expr is None:
        return status == "success"
    if isinstance(expr, bool):
        return expr and status == "success"
    inner = expr.strip()
    m = EXPR.fullmatch(inner)
    inner = m.group(1) if m else inner
    value = _truthy(evaluate(inner, context, status))
    if not re.search(r"\b(success|failure|always|cancelled)\s*\(", inner):
        value = value and status == "success"
    return value


def text_of(raw: Any, context: dict[str, Any]) -> str:
    """A YAML value as the runner puts it in an env variable or output: a missing `vars.X` is "", not "None"."""
    return _text(value_of(raw, context))


def value_of(raw: Any, context: dict[str, Any]) -> Any:
    """A YAML value that may be a whole expression (e.g. `matrix: ${{ fromJSON(...) }}`) keeps its type."""
    if isinstance(raw, str):
        m = EXPR.fullmatch(raw.strip())
        if m:
            return evaluate(m.group(1), context)
        return substitute(raw, context)
    if isinstance(raw, list):
        return [value_of(v, context) for v in raw]
    if isinstance(raw, dict):
        return {k: value_of(v, context) for k, v in raw.items()}
    return raw
