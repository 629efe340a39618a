"""Check translated catalogs: what a translation must keep of its English message.

    python scripts/check_translations.py [PO ...]     (default: every catalog under locale/)

For every translated entry (fuzzy and empty ones are skipped: `translations.py status` counts
them), the translation must keep, unchanged:

- every math span (``$...$``, ``$$...$$``, ``{math}`...```) and inline code span (```...```);
- every cross-reference's target: ``{ref}`text <sec-02-scale>``` keeps ``sec-02-scale`` (the
  text may be translated), and likewise {doc}, {numref}, {eq}, {term}, {cite} ... A {term}
  written without a target names its glossary entry: translate it as ``{term}`注意力权重
  <attention weight>```;
- every link URL and image source, and every placeholder (``%s``, ``{number}``);
- every Chinese phrase of the English message, quotations of the article above all (its
  question titles are quoted exactly as it writes them);
- and it stays one line, as the message is one paragraph.

It also checks the glossary's terms (``--terms``, on by default): where the English message uses
a core term (CORE_TERMS; its Chinese name is the one book/glossary.md gives), the translation
uses that Chinese name.

Each problem is one line: the catalog, the English message (shortened) and what is wrong. The
exit status is 1 when there is a problem. Sphinx's own checks run when the site is built
(`make book-zh`, with -W -n).
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GLOSSARY = "book/glossary.md"

# The terms whose Chinese name must be the glossary's wherever a translation meets them (English,
# as the glossary lists them). Ambiguous words (key, value, token) are left out on purpose.
CORE_TERMS = [
    "self-attention",
    "multi-head attention",
    "scaled dot-product attention",
    "cross-attention",
    "additive attention",
    "attention weight",
    "attention score",
    "mask",
    "padding mask",
    "causal mask",
    "positional encoding",
    "sinusoidal positional encoding",
    "relative position encoding",
    "rotary position embedding",
    "permutation equivariance",
    "head dimension",
    "output projection",
    "residual connection",
    "layer normalisation",
    "teacher forcing",
    "label smoothing",
    "cross-entropy",
    "autoregressive decoding",
    "KV cache",
    "encoder",
    "decoder",
]
# Roles whose content is a target (``text <target>`` or the target alone).
REFERENCE_ROLES = {
    "ref", "numref", "doc", "eq", "term", "download", "cite", "cite:p", "cite:t", "cite:ps",
    "cite:ts", "cite:alp", "cite:cts", "cite:empty", "footcite", "prf:ref", "any", "keyword",
}  # fmt: skip
PLACEHOLDER = re.compile(r"%(?:\([A-Za-z_]+\))?[sd]|\{[A-Za-z_][A-Za-z0-9_]*\}|\{\d*\}")
_CJK = "\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uff07\uff0a-\uffef"
CHINESE_PHRASE = re.compile(rf"「[^」\n]*」|『[^』\n]*』|(?:（[^（）\n]*）|[{_CJK}])+")


def _sibling(name: str):
    """scripts/<name>.py, imported by path (scripts/ is not a package)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@lru_cache(1)
def parser(root: Path = ROOT):
    """The book's MyST parser (as the website and the learner edition configure it)."""
    le = _sibling("learner_edition")
    return le.make_parser(le.load_config(root).myst)


# ----------------------------------------------------------------------------- one message


@dataclass
class Parts:
    """What a message is made of, as the MyST parser reads it."""

    math: Counter = field(default_factory=Counter)
    code: Counter = field(default_factory=Counter)
    targets: Counter = field(default_factory=Counter)  # (role, target)
    urls: Counter = field(default_factory=Counter)
    placeholders: Counter = field(default_factory=Counter)
    words: list[str] = field(default_factory=list)  # prose: text and link/role texts


def _role_target(name: str, content: str) -> tuple[str | None, str]:
    """(text or None, target) of a reference role's content."""
    explicit = re.fullmatch(r"(?s)(.*?)\s*<([^<>]+)>", content)
    if explicit:
        return explicit.group(1), explicit.group(2).strip()
    return None, content.strip()


def parts(text: str, md=None) -> Parts:
    """Split one message into what a translation keeps and its prose."""
    md = md or parser()
    found = Parts()
    for inline in md.parseInline(text, {}):  # a message is the inline text of one block
        for token in _walk(inline.children or []):
            kind = token.type
            if kind in ("math_inline", "math_inline_double", "math_single"):
                found.math[token.content] += 1
            elif kind == "code_inline":
                found.code[token.content] += 1
            elif kind == "myst_role":
                name = token.meta.get("name", "")
                if name == "math":
                    found.math[token.content] += 1
                elif name in REFERENCE_ROLES or ":" in name:
                    label, target = _role_target(name, token.content)
                    found.targets[(name, target)] += 1
                    if label:
                        found.words.append(label)
                        found.placeholders.update(PLACEHOLDER.findall(label))
                    elif name == "term":
                        found.words.append(target)
                else:  # {sub}, {sup}, {abbr}, {kbd}: prose
                    found.words.append(token.content)
            elif kind == "link_open":
                found.urls[token.attrs.get("href", "")] += 1
            elif kind == "image":
                found.urls[token.attrs.get("src", "")] += 1
            elif kind == "text":
                found.words.append(token.content)
                found.placeholders.update(PLACEHOLDER.findall(token.content))
    return found


def _walk(tokens):
    for token in tokens:
        yield token
        if token.children:
            yield from _walk(token.children)


def _diff(english: Counter, translated: Counter) -> tuple[list, list]:
    missing = list((english - translated).elements())
    extra = list((translated - english).elements())
    return missing, extra


def problems(msgid: str, msgstr: str, md=None) -> list[str]:
    """What the translation ``msgstr`` of ``msgid`` fails to keep (empty when it is fine)."""
    found = []
    if "\n" in msgstr:
        found.append("a line break: a message is one paragraph, keep it on one line")
    en, tr = parts(msgid, md), parts(msgstr, md)
    for what, a, b, show in (
        ("math", en.math, tr.math, lambda m: f"${m}$"),
        ("inline code", en.code, tr.code, lambda c: f"`{c}`"),
        ("cross-reference target", en.targets, tr.targets, lambda t: f"{{{t[0]}}}`<{t[1]}>`"),
        ("link", en.urls, tr.urls, str),
        ("placeholder", en.placeholders, tr.placeholders, str),
    ):
        missing, extra = _diff(a, b)
        if missing:
            found.append(f"{what} changed or lost: {', '.join(show(m) for m in missing)}")
            if what.startswith("cross-reference") and any(t[0] == "term" for t in missing):
                found.append("(a glossary term keeps its entry: {term}`中文 <English term>`)")
        if extra:
            found.append(f"{what} not in the English: {', '.join(show(m) for m in extra)}")
    for phrase in dict.fromkeys(p for w in en.words for p in CHINESE_PHRASE.findall(w)):
        if re.search(f"[{_CJK}]", phrase) and phrase not in msgstr:
            found.append(f"the Chinese phrase «{phrase}» is not quoted exactly")
    return found


# ----------------------------------------------------------------------------- glossary terms


def glossary_terms(root: Path = ROOT) -> dict[str, str]:
    """``{English term (lower case): its Chinese name}`` from the glossary's {glossary} block.

    An entry is a group of term lines (the English name, other names, the Chinese name) and an
    indented definition; the first term line with Chinese characters is the Chinese name.
    """
    text = (root / GLOSSARY).read_text(encoding="utf-8")
    block = re.search(r"^(:::+|```+)\{glossary\}[^\n]*\n(.*?)^\1\s*$", text, re.M | re.S)
    if not block:
        raise ValueError(f"{GLOSSARY} has no {{glossary}} block")
    found = {}
    for entry in re.split(r"\n\s*\n", block.group(2)):
        terms = [
            line.strip()
            for line in entry.splitlines()
            if line.strip() and not line[0].isspace() and not line.startswith(":")
        ]
        chinese = next((t for t in terms if re.search(f"[{_CJK}]", t)), None)
        if chinese:
            for term in terms:
                if not re.search(f"[{_CJK}]", term):
                    found[term.lower()] = chinese
    return found


def term_pattern(term: str) -> re.Pattern:
    """The English term in running text: any case, plural, hyphen or space between words."""
    words = [re.escape(w) for w in re.split(r"[\s-]+", term)]
    return re.compile(r"(?<![\w-])" + r"[\s-]".join(words) + r"(?:s|es)?(?![\w-])", re.I)


def term_problems(msgid: str, msgstr: str, terms: dict[str, str], md=None) -> list[str]:
    """Core terms of the English message whose glossary name the translation does not use."""
    en = " ".join(parts(msgid, md).words)
    tr = " ".join(parts(msgstr, md).words)
    found = []
    for term in CORE_TERMS:
        chinese = terms.get(term.lower())
        if chinese and term_pattern(term).search(en) and chinese not in tr:
            found.append(f"the glossary term «{term}» is «{chinese}» in Chinese")
    return found


# ----------------------------------------------------------------------------- catalogs


def check_catalog(path: Path, terms: dict[str, str] | None = None, md=None) -> list[str]:
    """One line per problem of one .po file."""
    import polib

    lines = []
    for entry in polib.pofile(str(path)):
        if entry.obsolete or not entry.msgstr or "fuzzy" in entry.flags:
            continue
        found = problems(entry.msgid, entry.msgstr, md)
        if terms is not None:
            found += term_problems(entry.msgid, entry.msgstr, terms, md)
        short = entry.msgid if len(entry.msgid) <= 90 else entry.msgid[:87] + "..."
        lines += [f"{path}: {short!r}: {problem}" for problem in found]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser_ = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser_.add_argument("po", nargs="*", type=Path, help="default: every .po under locale/")
    parser_.add_argument("--no-terms", action="store_true", help="skip the glossary-term check")
    args = parser_.parse_args(argv)
    files = args.po or sorted((ROOT / "locale").rglob("*.po"))
    terms = None if args.no_terms else glossary_terms()
    md = parser()
    report = []
    for path in files:
        report += check_catalog(path, terms, md)
    for line in report:
        print(line)
    print(f"{len(files)} catalogs checked: {len(report)} problem(s)", file=sys.stderr)
    return 1 if report else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
