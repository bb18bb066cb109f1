"""A small reader for the parts of infra/main.bicep the tests check (no Bicep compiler is available here).

It tokenizes Bicep (strings with `${}` interpolation, ''' multi-line strings, comments, brackets), then
reads top-level `param` declarations with their decorators and `var` declarations, and within a var's
expression every object's literal `name: '...'` property. That is enough to know which app settings
the template sets and which parameters are @secure(), without matching prose.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

PUNCTUATION = "{}[]()@:,=?!.<>|&+-*/%"


@dataclass(frozen=True)
class Token:
    kind: str  # "string" | "ident" | "number" | "punct" | "newline"
    text: str  # for strings: the literal text (interpolations kept as ${...})
    line: int
    interpolated: bool = False


@dataclass
class Param:
    name: str
    type: str
    decorators: list[str] = field(default_factory=list)
    default: list[Token] = field(default_factory=list)

    @property
    def secure(self) -> bool:
        return "secure" in self.decorators


@dataclass
class Var:
    name: str
    tokens: list[Token]

    def object_names(self) -> list[str]:
        """Literal `name: '...'` properties of the objects in this var's expression, in order."""
        names: list[str] = []
        depth_stack: list[str] = []
        for i, token in enumerate(self.tokens):
            if token.kind == "punct" and token.text in "{[(":
                depth_stack.append(token.text)
            elif token.kind == "punct" and token.text in "}])":
                depth_stack.pop()
            elif (
                token.kind == "ident"
                and token.text == "name"
                and depth_stack[-1:] == ["{"]
                and i + 2 < len(self.tokens)
                and self.tokens[i + 1].text == ":"
                and self.tokens[i + 2].kind == "string"
                and not self.tokens[i + 2].interpolated
            ):
                names.append(self.tokens[i + 2].text)
        return names

    def objects(self) -> list[dict[str, Token]]:
        """Objects of the expression whose properties are single tokens (`{ name: 'X', value: param }`)."""
        found: list[dict[str, Token]] = []
        stack: list[dict[str, Token] | None] = []
        for i, token in enumerate(self.tokens):
            if token.kind == "punct" and token.text == "{":
                stack.append({})
            elif token.kind == "punct" and token.text in "[(":
                stack.append(None)
            elif token.kind == "punct" and token.text in "}])":
                closed = stack.pop()
                if token.text == "}" and closed:
                    found.append(closed)
            elif (
                stack
                and stack[-1] is not None
                and token.kind == "ident"
                and i + 3 < len(self.tokens)
                and self.tokens[i + 1].text == ":"
                and self.tokens[i + 3].text in (",", "}", "\n")
            ):
                current = stack[-1]
                assert current is not None
                current[token.text] = self.tokens[i + 2]
        return found

    def identifiers(self) -> set[str]:
        return {t.text for t in self.tokens if t.kind == "ident"}


@dataclass
class Template:
    params: dict[str, Param]
    vars: dict[str, Var]
    tokens: list[Token]


class BicepSyntaxError(ValueError):
    pass


def tokenize(source: str) -> list[Token]:
    tokens: list[Token] = []
    i = 0
    line = 1
    n = len(source)
    while i < n:
        c = source[i]
        if c == "\n":
            tokens.append(Token("newline", "\n", line))
            line += 1
            i += 1
        elif c in " \t\r":
            i += 1
        elif source.startswith("//", i):
            while i < n and source[i] != "\n":
                i += 1
        elif source.startswith("/*", i):
            end = source.find("*/", i + 2)
            if end < 0:
                raise BicepSyntaxError(f"line {line}: unterminated comment")
            line += source.count("\n", i, end)
            i = end + 2
        elif source.startswith("'''", i):
            end = source.find("'''", i + 3)
            if end < 0:
                raise BicepSyntaxError(f"line {line}: unterminated multi-line string")
            tokens.append(Token("string", source[i + 3 : end], line))
            line += source.count("\n", i, end)
            i = end + 3
        elif c == "'":
            text, i, interpolated = _string(source, i, line)
            tokens.append(Token("string", text, line, interpolated))
        elif c.isalpha() or c == "_":
            match = re.compile(r"[A-Za-z_][A-Za-z0-9_]*").match(source, i)
            assert match is not None
            tokens.append(Token("ident", match.group(), line))
            i = match.end()
        elif c.isdigit():
            match = re.compile(r"\d+").match(source, i)
            assert match is not None
            tokens.append(Token("number", match.group(), line))
            i = match.end()
        elif c in PUNCTUATION:
            two = source[i : i + 2]
            if two in ("==", "!=", "<=", ">=", "&&", "||", "??", "=>", "?."):
                tokens.append(Token("punct", two, line))
                i += 2
            else:
                tokens.append(Token("punct", c, line))
                i += 1
        else:
            raise BicepSyntaxError(f"line {line}: unexpected character {c!r}")
    return tokens


def _string(source: str, start: int, line: int) -> tuple[str, int, bool]:
    """A '...' string starting at `start`; returns (text, index after it, has interpolation)."""
    out: list[str] = []
    i = start + 1
    interpolated = False
    while i < len(source):
        c = source[i]
        if c == "\\" and i + 1 < len(source):
            out.append(source[i : i + 2])
            i += 2
        elif c == "'":
            return "".join(out), i + 1, interpolated
        elif source.startswith("${", i):
            interpolated = True
            depth = 0
            j = i
            while j < len(source):
                if source[j] == "{":
                    depth += 1
                elif source[j] == "}":
                    depth -= 1
                    if depth == 0:
                        break
                elif source[j] == "'":
                    _, j, _ = _string(source, j, line)
                    continue
                j += 1
            out.append(source[i : j + 1])
            i = j + 1
        elif c == "\n":
            raise BicepSyntaxError(f"line {line}: newline in a single-line string")
        else:
            out.append(c)
            i += 1
    raise BicepSyntaxError(f"line {line}: unterminated string")


def parse(path: Path) -> Template:
    return parse_text(path.read_text(encoding="utf-8"))


def parse_text(source: str) -> Template:
    tokens = tokenize(source)
    params: dict[str, Param] = {}
    variables: dict[str, Var] = {}
    decorators: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        at_line_start = i == 0 or tokens[i - 1].kind == "newline"
        if token.kind == "punct" and token.text == "@" and at_line_start:
            decorators.append(tokens[i + 1].text)
            i = _statement_end(tokens, i)
            continue
        if token.kind == "ident" and at_line_start and token.text in ("param", "var"):
            name = tokens[i + 1].text
            end = _statement_end(tokens, i)
            if token.text == "param":
                default_at = next((k for k in range(i + 2, end) if tokens[k].text == "="), end)
                params[name] = Param(name, tokens[i + 2].text, decorators, tokens[default_at + 1 : end])
            else:
                if tokens[i + 2].text != "=":
                    raise BicepSyntaxError(f"line {token.line}: expected '=' after var {name}")
                variables[name] = Var(name, tokens[i + 3 : end])
            decorators = []
            i = end
            continue
        if token.kind != "newline":
            if token.kind == "ident" and at_line_start:
                decorators = []
            i = _statement_end(tokens, i) if at_line_start else i + 1
            continue
        i += 1
    return Template(params, variables, tokens)


def _statement_end(tokens: list[Token], start: int) -> int:
    """Index of the newline that ends the statement starting at `start` (brackets balanced)."""
    depth = 0
    i = start
    while i < len(tokens):
        token = tokens[i]
        if token.kind == "punct" and token.text in "{[(":
            depth += 1
        elif token.kind == "punct" and token.text in "}])":
            depth -= 1
            if depth < 0:
                raise BicepSyntaxError(f"line {token.line}: unbalanced {token.text!r}")
        elif token.kind == "newline" and depth == 0:
            return i
        i += 1
    if depth:
        raise BicepSyntaxError("unbalanced brackets at end of file")
    return i
