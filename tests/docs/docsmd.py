"""Reading the lab's Markdown docs: which files, their fenced blocks, inline code, links and headings.

Shared by the tests in tests/docs and by the generators that write tables and outputs into the docs.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Folders that hold no docs of ours (dependencies, caches, build output).
_SKIP_PARTS = {
    ".git",
    ".venv",
    "node_modules",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    "build",
    "dist",
}

FENCE_RE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^\n`]*)$")
INLINE_CODE_RE = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)")
LINK_RE = re.compile(
    r"(?<!\!)\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)|!\[[^\]]*\]\((?P<img>[^)\s]+)\)"
)
HEADING_RE = re.compile(r"^#{1,6}\s+(?P<title>.+?)\s*#*\s*$")


def doc_files(root: Path = REPO) -> list[Path]:
    """Every Markdown file of the repository that a person reads (README.md and everything under it)."""
    found = []
    for path in sorted(root.rglob("*.md")):
        rel = path.relative_to(root)
        if _SKIP_PARTS.intersection(rel.parts):
            continue
        found.append(path)
    return found


@dataclass
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    text: str


def split_blocks(text: str, path: Path) -> tuple[list[Block], list[tuple[int, str]]]:
    """Fenced code blocks, and the remaining prose lines (with their 1-based numbers)."""
    blocks: list[Block] = []
    prose: list[tuple[int, str]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = FENCE_RE.match(lines[i])
        if not m:
            prose.append((i + 1, lines[i]))
            i += 1
            continue
        fence = m.group("fence")
        lang = m.group("info").strip().split(" ")[0].lower() if m.group("info").strip() else ""
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and not (
            lines[i].strip().startswith(fence[0] * len(fence)) and lines[i].strip().strip(fence[0]) == ""
        ):
            body.append(lines[i])
            i += 1
        i += 1  # closing fence
        blocks.append(Block(path, start + 1, lang, "\n".join(body)))
    return blocks, prose


@dataclass
class CommandRef:
    path: Path
    line: int
    text: str  # the command as written, starting with "labctl"
    argv: list[str]  # tokens after "labctl"


_SHELL_STOP = {"|", "||", "&&", ";", ">", ">>", "2>&1", "&", "<", "2>", ")"}
_SHELL_LANGS = {"bash", "sh", "shell", "zsh", "console", "shell-session"}


def _tokens_after_labctl(fragment: str) -> list[list[str]]:
    """All labctl invocations in one shell line, each as the tokens that follow `labctl`."""
    fragment = fragment.replace("$(", " ").replace(")", " ) ").replace("`", " ")
    try:
        tokens = shlex.split(fragment, comments=True)
    except ValueError:
        tokens = fragment.split()
    found: list[list[str]] = []
    # A quoted command substitution, e.g. eval "$(labctl env)", arrives as one token: look inside.
    for tok in tokens:
        if " " in tok and "labctl" in tok:
            found.extend(_tokens_after_labctl(tok))
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if (
            tok == "labctl"
            or tok.endswith("/labctl")
            or (tok == "-m" and i + 1 < len(tokens) and tokens[i + 1] == "labctl")
        ):
            if tok == "-m":
                i += 1
            args: list[str] = []
            i += 1
            while i < len(tokens) and tokens[i] not in _SHELL_STOP:
                args.append(tokens[i])
                i += 1
            found.append(args)
            continue
        i += 1
    return found


def command_refs(path: Path) -> list[CommandRef]:
    """Every `labctl …` invocation shown in a doc: in shell blocks and in inline code spans."""
    text = path.read_text(encoding="utf-8")
    blocks, prose = split_blocks(text, path)
    refs: list[CommandRef] = []
    for block in blocks:
        if block.lang not in _SHELL_LANGS:
            continue
        joined: list[tuple[int, str]] = []
        pending = ""
        pending_line = 0
        for offset, raw in enumerate(block.text.splitlines()):
            line = raw.rstrip()
            if block.lang in {"console", "shell-session"}:
                # Console transcripts: only the prompt lines are commands, the rest is output.
                if not pending and not line.lstrip().startswith("$ "):
                    continue
                if not pending:
                    line = line.lstrip()[2:]
            if not pending:
                pending_line = block.line + 1 + offset
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            joined.append((pending_line, pending + line))
            pending = ""
        for line_no, line in joined:
            for argv in _tokens_after_labctl(line):
                refs.append(CommandRef(path, line_no, "labctl " + " ".join(argv), argv))
    for line_no, line in prose:
        for m in INLINE_CODE_RE.finditer(line):
            code = m.group(2).strip()
            if re.match(r"^(\S+=\S+\s+)*labctl(\s|$)", code):
                for argv in _tokens_after_labctl(code):
                    refs.append(CommandRef(path, line_no, code, argv))
    return refs


@dataclass
class Link:
    path: Path
    line: int
    target: str


def links(path: Path) -> list[Link]:
    """Every Markdown link and image outside code (inline code spans are removed first)."""
    text = path.read_text(encoding="utf-8")
    _, prose = split_blocks(text, path)
    found = []
    for line_no, line in prose:
        line = INLINE_CODE_RE.sub("", line)
        for m in LINK_RE.finditer(line):
            found.append(Link(path, line_no, m.group("target") or m.group("img")))
    return found


def github_slug(title: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    title = re.sub(r"<[^>]+>", "", title)  # inline HTML
    title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title)  # links keep their text
    title = title.replace("`", "").strip().lower()
    title = re.sub(r"[^\w\- ]", "", title)
    return title.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of a document's headings, numbered like GitHub does for repeats."""
    text = path.read_text(encoding="utf-8")
    _, prose = split_blocks(text, path)
    seen: dict[str, int] = {}
    result: set[str] = set()
    for _, line in prose:
        m = HEADING_RE.match(line)
        if not m:
            continue
        slug = github_slug(m.group("title"))
        n = seen.get(slug, 0)
        result.add(slug if n == 0 else f"{slug}-{n}")
        seen[slug] = n + 1
    for m in re.finditer(r"<a\s+(?:name|id)=\"([^\"]+)\"", text):
        result.add(m.group(1))
    return result


def mermaid_blocks(paths: list[Path]) -> list[Block]:
    blocks: list[Block] = []
    for path in paths:
        found, _ = split_blocks(path.read_text(encoding="utf-8"), path)
        blocks.extend(b for b in found if b.lang == "mermaid")
    return blocks
