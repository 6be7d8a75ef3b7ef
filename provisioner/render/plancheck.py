"""A rendered domain plan may only describe libvirt objects: no construct that runs code on the host.

A domain's templates/ overrides are untrusted, and Terraform runs as the
engine's user: a `provisioner "local-exec"`, an `external` data source, a
module, a backend or another provider would run or fetch code on the host, and
`file()`/`templatefile()` would read host files into the plan. The plan is
lexed and parsed (HCL's native syntax: blocks, attributes, expressions with
their string templates and heredocs) and checked against an allow-list:

- top-level blocks: terraform (with required_providers only), provider
  "libvirt", resource and data of `libvirt_*` types, variable, locals, output;
- required_providers: only `libvirt`, from dmacvicar/libvirt;
- the provider's `uri`: the literal the engine chose;
- nowhere a provisioner or connection block, a provider-defined function
  (`provider::`), nor one of Terraform's filesystem functions.

Anything that cannot be parsed is refused too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from provisioner.errors import InputError

ALLOWED_TOP = frozenset({"terraform", "provider", "resource", "data", "variable", "locals", "output"})
FORBIDDEN_BLOCKS = frozenset({"provisioner", "connection"})
FORBIDDEN_FUNCTIONS = frozenset({
    "file", "fileexists", "fileset", "filebase64", "filebase64sha256", "filebase64sha512", "filemd5",
    "filesha1", "filesha256", "filesha512", "templatefile", "abspath", "pathexpand",
})
PROVIDER_SOURCES = frozenset({"dmacvicar/libvirt", "registry.terraform.io/dmacvicar/libvirt"})

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_HEREDOC = re.compile(r"<<(-?)([A-Za-z_][A-Za-z0-9_-]*)\n")
_OPERATORS = ("==", "!=", "<=", ">=", "=>", "&&", "||", "...", "::")


@dataclass(frozen=True)
class Token:
    """One lexical token: kind is ident, number, string, newline, eof or the operator itself."""

    kind: str
    line: int
    text: str = ""
    literal: bool = True  # a string without ${ } or %{ } in it


class PlanRefused(Exception):
    """A construct the plan may not contain, or text that cannot be parsed; `line` in the plan."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line


class _Lexer:
    def __init__(self, text: str):
        self.text = text
        self.pos = 0
        self.line = 1
        self.tokens: list[Token] = []

    def error(self, message: str) -> PlanRefused:
        return PlanRefused(self.line, message)

    def run(self) -> list[Token]:
        self.expression(stop=None)
        self.tokens.append(Token("eof", self.line))
        return self.tokens

    def expression(self, stop: str | None) -> None:
        """Tokens up to the end, or (inside a template interpolation) up to its closing brace."""
        depth = 0
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if char == "\n":
                self.tokens.append(Token("newline", self.line))
                self.line += 1
                self.pos += 1
            elif char in " \t\r":
                self.pos += 1
            elif char == "#" or text.startswith("//", self.pos):
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                if end < 0:
                    raise self.error("unterminated comment")
                self.line += text.count("\n", self.pos, end)
                self.pos = end + 2
            elif char == '"':
                self.pos += 1
                self.template(closing='"')
            elif text.startswith("<<", self.pos) and _HEREDOC.match(text, self.pos):
                self.heredoc(_HEREDOC.match(text, self.pos))
            elif stop is not None and char == "~" and text.startswith("~}", self.pos) and depth == 0:
                self.pos += 1
            elif char == "}" and stop is not None and depth == 0:
                self.pos += 1
                return
            elif _IDENT.match(text, self.pos):
                word = _IDENT.match(text, self.pos).group()
                self.tokens.append(Token("ident", self.line, word))
                self.pos += len(word)
            elif _NUMBER.match(text, self.pos):
                self.tokens.append(Token("number", self.line, _NUMBER.match(text, self.pos).group()))
                self.pos = _NUMBER.match(text, self.pos).end()
            else:
                op = next((o for o in _OPERATORS if text.startswith(o, self.pos)), char)
                if op in "{[(":
                    depth += 1
                elif op in "}])":
                    depth -= 1
                self.tokens.append(Token(op, self.line))
                self.pos += len(op)
        if stop is not None:
            raise self.error("unterminated template interpolation")

    def template(self, closing: str) -> None:
        """A quoted string's body; interpolations are lexed as expressions."""
        text, start, parts, literal = self.text, self.line, [], True
        while True:
            if self.pos >= len(text):
                raise PlanRefused(start, "unterminated string")
            char = text[self.pos]
            if char == closing:
                self.pos += 1
                break
            if char == "\n":
                raise PlanRefused(start, "newline in a quoted string")
            if char == "\\":
                parts.append(text[self.pos:self.pos + 2])
                self.pos += 2
            elif text.startswith(("$${", "%%{"), self.pos):
                parts.append(text[self.pos + 1:self.pos + 3])
                self.pos += 3
            elif text.startswith(("${", "%{"), self.pos):
                literal = False
                self.pos += 2
                if text.startswith("~", self.pos):
                    self.pos += 1
                self.expression(stop="}")
            else:
                parts.append(char)
                self.pos += 1
        self.tokens.append(Token("string", start, "".join(parts), literal))

    def heredoc(self, match: re.Match[str]) -> None:
        marker = match.group(2)
        start = self.line
        self.pos = match.end()
        self.line += 1
        end = re.compile(rf"^[ \t]*{re.escape(marker)}[ \t]*$", re.M).search(self.text, self.pos)
        if end is None:
            raise PlanRefused(start, "unterminated heredoc")
        body = self.text[self.pos:end.start()]
        # Only interpolations matter in a heredoc: lex them like a quoted string's.
        inner = _Lexer(body)
        inner.line = self.line
        while inner.pos < len(body):
            inner.template_segment()
        self.tokens.extend(inner.tokens)
        self.tokens.append(Token("string", start, "", literal=not inner.tokens))
        self.line += body.count("\n")
        self.pos = end.end()

    def template_segment(self) -> None:
        """One piece of a heredoc body: text up to an interpolation, then the interpolation."""
        text = self.text
        match = re.compile(r"(?<![$%])[$%]\{").search(text, self.pos)
        if match is None:
            self.pos = len(text)
            return
        self.line += text.count("\n", self.pos, match.start())
        self.pos = match.end()
        if text.startswith("~", self.pos):
            self.pos += 1
        self.expression(stop="}")


@dataclass
class Block:
    """A parsed block: its type, labels, attributes (name -> expression tokens) and nested blocks."""

    type: str
    labels: list[str]
    line: int
    attributes: dict[str, list[Token]] = field(default_factory=dict)
    blocks: list[Block] = field(default_factory=list)


class _Parser:
    def __init__(self, tokens: list[Token]):
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def take(self) -> Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def body(self, into: Block, nested: bool) -> None:
        while True:
            token = self.take()
            if token.kind == "newline":
                continue
            if token.kind == "eof":
                if nested:
                    raise PlanRefused(token.line, "unclosed block")
                return
            if token.kind == "}" and nested:
                return
            if token.kind != "ident":
                raise PlanRefused(token.line, f"expected an attribute or a block, found {token.kind!r}")
            if self.peek().kind == "=":
                self.take()
                into.attributes[token.text] = self.expression()
                continue
            labels = []
            while self.peek().kind in ("string", "ident"):
                label = self.take()
                if label.kind == "string" and not label.literal:
                    raise PlanRefused(label.line, "a block label with an interpolation")
                labels.append(label.text)
            opening = self.take()
            if opening.kind != "{":
                raise PlanRefused(opening.line, f"expected '{{' after block {token.text!r}")
            block = Block(token.text, labels, token.line)
            into.blocks.append(block)
            self.body(block, nested=True)

    def expression(self) -> list[Token]:
        """An attribute's expression: up to a newline outside brackets (or the enclosing block's '}')."""
        out: list[Token] = []
        depth = 0
        while True:
            token = self.peek()
            if token.kind == "eof" or (depth == 0 and token.kind in ("newline", "}")):
                if not out:
                    raise PlanRefused(token.line, "an attribute without a value")
                return out
            if token.kind in ("{", "[", "("):
                depth += 1
            elif token.kind in ("}", "]", ")"):
                depth -= 1
            out.append(self.take())


def parse_plan(text: str) -> Block:
    """The plan as a tree of blocks; PlanRefused if it is not HCL's native syntax as far as this reads it."""
    root = Block("", [], 0)
    _Parser(_Lexer(text).run()).body(root, nested=False)
    return root


def check_plan(text: str, uri: str) -> None:
    """PlanRefused (with the line) for any construct a domain plan may not hold; `uri` is the libvirt URI."""
    root = parse_plan(text)
    for block in root.blocks:
        if block.type not in ALLOWED_TOP:
            raise PlanRefused(block.line, f"a {block.type!r} block (allowed: {', '.join(sorted(ALLOWED_TOP))})")
        if block.type in ("resource", "data") and not (block.labels and block.labels[0].startswith("libvirt_")):
            raise PlanRefused(block.line, f"a {block.type} block that is not a libvirt_* type")
        if block.type == "provider":
            _check_provider(block, uri)
        if block.type == "terraform":
            _check_terraform(block)
    _check_everywhere(root)


def _check_provider(block: Block, uri: str) -> None:
    if block.labels != ["libvirt"]:
        raise PlanRefused(block.line, "a provider other than libvirt")
    value = block.attributes.get("uri")
    if value is None or len(value) != 1 or value[0].kind != "string" or not value[0].literal \
            or _unescape(value[0].text) != uri:
        raise PlanRefused(block.line, "the libvirt provider's uri must be the domain's libvirt_uri, as a literal")


def _check_terraform(block: Block) -> None:
    if block.attributes:
        raise PlanRefused(block.line, "attributes in the terraform block")
    for inner in block.blocks:
        if inner.type != "required_providers":
            raise PlanRefused(inner.line, f"a {inner.type!r} block in the terraform block (only required_providers)")
        for name, value in inner.attributes.items():
            if name != "libvirt":
                raise PlanRefused(inner.line, f"required provider {name[:40]!r}: only libvirt")
            _check_libvirt_requirement(inner.line, value)
        if inner.blocks:
            raise PlanRefused(inner.blocks[0].line, "a block in required_providers")


def _check_libvirt_requirement(line: int, tokens: list[Token]) -> None:
    kinds = [t.kind for t in tokens if t.kind not in ("newline", ",")]
    keys = [t.text for t in tokens if t.kind == "ident"]
    strings = [t for t in tokens if t.kind == "string"]
    if kinds[:1] != ["{"] or kinds[-1:] != ["}"] or set(kinds[1:-1]) - {"ident", "=", "string"} \
            or set(keys) - {"source", "version"} or not all(s.literal for s in strings):
        raise PlanRefused(line, "required_providers.libvirt must be { source = \"…\", version = \"…\" }")
    pairs = dict(zip(keys, (_unescape(s.text) for s in strings)))
    if len(keys) != len(strings) or pairs.get("source", "").lower() not in PROVIDER_SOURCES:
        raise PlanRefused(line, f"required_providers.libvirt must come from {sorted(PROVIDER_SOURCES)[0]}")


def _check_everywhere(block: Block) -> None:
    for inner in block.blocks:
        if inner.type in FORBIDDEN_BLOCKS or (inner.type == "dynamic" and set(inner.labels) & FORBIDDEN_BLOCKS):
            raise PlanRefused(inner.line, f"a {inner.type!r} block (it runs commands or connects from the host)")
        _check_everywhere(inner)
    for tokens in block.attributes.values():
        _check_expression(tokens)


def _check_expression(tokens: list[Token]) -> None:
    for token, following in zip(tokens, tokens[1:]):
        if token.kind == "::":
            raise PlanRefused(token.line, "a provider-defined function (provider::…)")
        if token.kind == "ident" and following.kind == "(" and token.text in FORBIDDEN_FUNCTIONS:
            raise PlanRefused(token.line, f"the function {token.text}() (it reads host files)")


_UNESCAPES = {"\\\\": "\\", '\\"': '"', "\\n": "\n", "\\r": "\r", "\\t": "\t"}


def _unescape(text: str) -> str:
    return re.sub(r"\\u([0-9a-fA-F]{4})|\\.", lambda m: chr(int(m.group(1), 16)) if m.group(1)
                  else _UNESCAPES.get(m.group(0), m.group(0)), text)


def refuse_unsafe_plan(text: str, uri: str, template: str) -> None:
    """InputError naming `template` (whose rendering gave `text`) if check_plan refuses the plan."""
    try:
        check_plan(text, uri)
    except PlanRefused as exc:
        raise InputError(template, f"the rendered plan (main.tf line {exc.line}) is refused: {exc}; "
                                   "a domain plan may only describe libvirt objects") from None
