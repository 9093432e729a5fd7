"""A small evaluator for the subset of Go's text/template that the Ollama Modelfile
templates written by `modelfile` use, so a template can be checked against the model's
own chat template before it is written (and in the tests).

Supported: literal text; actions without trim markers; `if` / `else if` / `else` / `end`;
`range $i, $_ := PIPE`; `$x := PIPE`; fields `.A.B`, `$.A`, `$x`; string and integer
literals; parenthesised pipelines; the functions eq, ne, and, or, not, len, slice. Go's
truth rules: false, 0, "", nil and empty lists are false. Anything else raises ValueError,
so a template this module cannot evaluate is never judged equal."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_ACTION = re.compile(r"\{\{(.*?)\}\}", re.S)
_TOKEN = re.compile(r'\s*(?:(\()|(\))|("(?:[^"\\]|\\.)*")|(-?\d+)|(\$?[A-Za-z_.$][\w.$]*))')


@dataclass
class _Node:
    kind: str  # text, expr, if, range, assign
    text: str = ""
    expr: Any = None
    var: str = ""
    vars: tuple[str, ...] = ()
    branches: list = field(default_factory=list)  # if: [(expr or None, [nodes])]; range: [(expr, [nodes])]


def _lex_expr(src: str) -> list:
    pos = 0
    out: list[Any] = []
    src = src.strip()
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if not m or m.end() == pos:
            raise ValueError(f"cannot read {src[pos:]!r}")
        pos = m.end()
        lp, rp, s, n, name = m.groups()
        if lp:
            out.append("(")
        elif rp:
            out.append(")")
        elif s is not None:
            out.append(("str", bytes(s[1:-1], "utf-8").decode("unicode_escape")))
        elif n is not None:
            out.append(("int", int(n)))
        else:
            out.append(("name", name))
    return out


def _parse_expr(tokens: list, i: int = 0, stop: str | None = None) -> tuple[Any, int]:
    """A command: one operand, or a function name followed by operands."""
    items = []
    while i < len(tokens) and tokens[i] != stop:
        t = tokens[i]
        if t == "(":
            sub, i = _parse_expr(tokens, i + 1, ")")
            items.append(sub)
            i += 1
        elif t == ")":
            raise ValueError("unbalanced )")
        else:
            items.append(t)
            i += 1
    if not items:
        raise ValueError("empty expression")
    if len(items) == 1:
        return items[0], i
    return ("call", items[0], items[1:]), i


def parse(src: str) -> list[_Node]:
    root: list[_Node] = []
    stack: list[tuple[_Node, list[_Node]]] = []
    cur = root
    pos = 0
    for m in _ACTION.finditer(src):
        if m.start() > pos:
            cur.append(_Node("text", text=src[pos : m.start()]))
        pos = m.end()
        body = m.group(1)
        if body.startswith("-") or body.endswith("-"):
            raise ValueError("trim markers are not supported")
        body = body.strip()
        word = body.split(None, 1)[0] if body else ""
        rest = body[len(word) :].strip()
        if word == "if":
            node = _Node("if", branches=[(_parse_expr(_lex_expr(rest))[0], [])])
            cur.append(node)
            stack.append((node, cur))
            cur = node.branches[-1][1]
        elif word == "else":
            if not stack or stack[-1][0].kind != "if":
                raise ValueError("else outside if")
            node = stack[-1][0]
            cond = None
            if rest.startswith("if "):
                cond = _parse_expr(_lex_expr(rest[3:]))[0]
            node.branches.append((cond, []))
            cur = node.branches[-1][1]
        elif word == "end":
            if not stack:
                raise ValueError("end without if/range")
            _, cur = stack.pop()
        elif word == "range":
            m2 = re.match(r"(\$\w*)\s*,\s*(\$\w*)\s*:=\s*(.*)$", rest, re.S)
            if not m2:
                raise ValueError(f"unsupported range {rest!r}")
            node = _Node(
                "range", vars=(m2.group(1), m2.group(2)), branches=[(_parse_expr(_lex_expr(m2.group(3)))[0], [])]
            )
            cur.append(node)
            stack.append((node, cur))
            cur = node.branches[0][1]
        elif re.match(r"\$\w+\s*:=", body):
            var, expr = body.split(":=", 1)
            cur.append(_Node("assign", var=var.strip(), expr=_parse_expr(_lex_expr(expr))[0]))
        else:
            cur.append(_Node("expr", expr=_parse_expr(_lex_expr(body))[0]))
    if stack:
        raise ValueError("unclosed if/range")
    if pos < len(src):
        root.append(_Node("text", text=src[pos:]))
    return root


def _truth(v) -> bool:
    return bool(v)


def _field(obj, path: list[str]):
    for p in path:
        if not p:
            continue
        obj = obj.get(p) if isinstance(obj, dict) else getattr(obj, p, None)
    return obj


def _eval(e, dot, scope: dict):
    if isinstance(e, tuple) and e and e[0] == "call":
        _, fn, args = e
        name = fn[1] if isinstance(fn, tuple) and fn[0] == "name" else None
        vals = [_eval(a, dot, scope) for a in args]
        if name == "eq":
            return any(vals[0] == v for v in vals[1:])
        if name == "ne":
            return vals[0] != vals[1]
        if name == "and":
            out = vals[0]
            for v in vals:
                out = v
                if not _truth(v):
                    return v
            return out
        if name == "or":
            for v in vals:
                if _truth(v):
                    return v
            return vals[-1]
        if name == "not":
            return not _truth(vals[0])
        if name == "len":
            return len(vals[0])
        if name == "slice":
            seq = vals[0]
            return seq[vals[1] : vals[2]] if len(vals) > 2 else seq[vals[1] :]
        raise ValueError(f"unsupported function {name!r}")
    kind, val = e
    if kind in ("str", "int"):
        return val
    if val.startswith("$"):
        head, _, rest = val.partition(".")
        base = scope["$"] if head == "$" else scope[head]
        return _field(base, rest.split(".")) if rest else base
    if val.startswith("."):
        return _field(dot, val[1:].split(".")) if val != "." else dot
    raise ValueError(f"unsupported name {val!r}")


def _run(nodes: list[_Node], dot, scope: dict, out: list[str]) -> None:
    for n in nodes:
        if n.kind == "text":
            out.append(n.text)
        elif n.kind == "expr":
            v = _eval(n.expr, dot, scope)
            out.append("" if v is None else str(v))
        elif n.kind == "assign":
            scope[n.var] = _eval(n.expr, dot, scope)
        elif n.kind == "if":
            for cond, body in n.branches:
                if cond is None or _truth(_eval(cond, dot, scope)):
                    _run(body, dot, dict(scope), out)
                    break
        elif n.kind == "range":
            expr, body = n.branches[0]
            for i, item in enumerate(_eval(expr, dot, scope) or []):
                inner = dict(scope)
                inner[n.vars[0]] = i
                inner[n.vars[1]] = item
                _run(body, item, inner, out)


def render(template: str, data: dict) -> str:
    """`template` executed on `data` (dicts stand for Go structs)."""
    out: list[str] = []
    _run(parse(template), data, {"$": data}, out)
    return "".join(out)


def ollama_values(messages: list[dict]) -> dict:
    """The values Ollama gives a template that uses .Messages (template.Execute and its
    collate): all system messages joined by a blank line as .System, consecutive messages
    of one role merged, system messages kept in .Messages."""
    system = [m["content"] for m in messages if m["role"] == "system"]
    collated: list[dict] = []
    for m in messages:
        if collated and collated[-1]["Role"] == m["role"] and m["role"] != "tool":
            collated[-1]["Content"] += "\n\n" + m["content"]
        else:
            collated.append({"Role": m["role"], "Content": m["content"]})
    return {"System": "\n\n".join(system), "Messages": collated, "Response": "", "Tools": None}
