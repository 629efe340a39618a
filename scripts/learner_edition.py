"""Write the learner edition: the chapter notebooks as plain Jupyter notebooks, without solutions.

The source notebooks are MyST: exercise and solution directives, admonitions, dropdowns, roles
such as {ref} and {cite}, and `(label)=` targets. Only the website (Jupyter Book) renders those;
Jupyter, JupyterLab, VS Code, nbconvert and Colab show them as raw text. This script reads each
markdown cell with the MyST parser's own tokenizer (markdown-it-py with the MyST plugins,
configured from _config.yml as MyST-NB configures it) and writes what every front end renders:

- exercises become numbered headings (``### Exercise 2.1 ★ Title``), as on the website;
- solutions are removed (the gated cells from {solution-start} to {solution-end});
- admonitions (the interview-question boxes) become a styled HTML block with their title;
- dropdowns become a collapsed ``<details>`` with its ``<summary>``;
- roles ({ref}, {numref}, {doc}, {cite}, {eq}, {term}) become links to the website, from the one
  base URL of _config.yml (``html.baseurl``); ``(label)=`` targets and ``%`` comments go;
- math macros of the website's MathJax configuration are expanded (Jupyter does not know them).

Code cells keep their outputs, except the cells of an exercise (the stub and its checker call),
which the learner runs. Cells tagged remove-cell are website-only: markdown ones are dropped,
code ones (the Colab install cell) are kept, since a notebook must still run top to bottom.
A construct the converter does not know stops it with the notebook and cell named, rather than
leaking raw MyST into the learner edition.

Usage: python scripts/learner_edition.py [--root .] [--out _build/learner] [--language zh_CN]
It writes OUT/notebooks/NN_*.ipynb and OUT/learner-notebooks.zip. With ``--language``, the prose
is taken from that language's catalogs (locale/, scripts/translations.py) before the conversion,
and the links go to that edition of the website; code cells and outputs are the same.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from html import escape
from pathlib import Path
from posixpath import normpath

import nbformat
import yaml
from docutils.nodes import make_id
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from myst_parser.config.main import MdParserConfig
from myst_parser.parsers.directives import parse_directive_text
from myst_parser.parsers.mdit import create_md_parser
from sphinx.util.nodes import _make_id as _sphinx_id

ZIP_NAME = "learner-notebooks.zip"
ZIP_FOLDER = "learner-notebooks"  # the folder a learner gets when unpacking the zip
NOTE = (
    "*Learner edition: the solutions are removed. Run each checker cell to test your code. "
    "The chapter with its solutions is on the [course website]({url}).*"
)
ADMONITIONS = {  # docutils' admonitions: each becomes a block quote with its title
    "note", "seealso", "tip", "hint", "important", "attention", "caution", "warning", "danger",
    "error",
}  # fmt: skip
ADMONITION_TITLES = {"seealso": "See also"}
SOURCE_LANGUAGE = "en"


@dataclass(frozen=True)
class Words:
    """The words the learner edition writes itself, in one language.

    Exercise, figure and admonition words are the website's: in a translated edition they come
    from the catalogs that translate the website (Sphinx's and sphinx-exercise's own), so a
    learner notebook says "练习 2.1" and "图 2.1" where the Chinese site does.
    """

    note: str = NOTE
    exercise: str = "Exercise %s"
    figure: str = "Fig. %s"
    equation: str = "Eq. %s"
    caption: str = "**{figure}.** {caption}"
    details: str = "Details"
    admonitions: tuple = ()  # ((directive name, title), ...)
    # The instructor guide's exercise table (scripts/learner_site.py)
    table_header: str = "| Chapter and exercise | Difficulty | Minutes |"
    table_exercise: str = "{exercise}: {title}"
    table_total: str = "Course total: {count} exercises"
    table_summary: str = "In all: {by_stars}, about {hours:.1f} hours of a student's time."
    not_set: str = "not set"

    def admonition(self, name: str) -> str:
        return dict(self.admonitions).get(name, ADMONITION_TITLES.get(name, name.capitalize()))


# What no upstream catalog translates. A new language adds its entry here and its edition in
# _config.yml (sphinx.config.course_editions).
OWN_WORDS = {
    "zh_CN": {
        "note": (
            "*学习版：本版删去了练习的解答。运行每个检查单元即可测试你的代码。"
            "含解答的本章见[课程网站]({url})。*"
        ),
        "equation": "式 %s",
        "caption": "**{figure}** {caption}",
        "details": "详情",
        "table_header": "| 章节与练习 | 难度 | 分钟 |",
        "table_exercise": "{exercise}：{title}",
        "table_total": "全课程共 {count} 道练习",
        "table_summary": "合计：{by_stars}，约需学生 {hours:.1f} 小时。",
        "not_set": "未设定",
    }
}


@lru_cache
def words(language: str = SOURCE_LANGUAGE) -> Words:
    """The learner edition's own words in ``language``."""
    if language == SOURCE_LANGUAGE:
        return Words()
    if language not in OWN_WORDS:
        raise LearnerEditionError(f"the learner edition has no words for {language!r} (OWN_WORDS)")
    import gettext

    import sphinx
    import sphinx_exercise

    sphinx_words = gettext.translation(
        "sphinx", Path(sphinx.__file__).parent / "locale", [language], fallback=True
    ).gettext
    exercise_words = gettext.translation(
        "exercise",
        Path(sphinx_exercise.__file__).parent / "translations" / "locales",
        [language],
        fallback=True,
    ).gettext
    names = sorted(ADMONITIONS)
    titles = [sphinx_words(ADMONITION_TITLES.get(n, n.capitalize())) for n in names]
    return Words(
        exercise=exercise_words("Exercise") + " %s",
        figure=sphinx_words("Fig. %s"),
        admonitions=tuple(zip(names, titles, strict=True)),
        **OWN_WORDS[language],
    )


MINUTES_KEY = (
    "exercise"  # markdown cell metadata of an {exercise-start}: {"exercise": {"minutes": 20}}
)


class LearnerEditionError(ValueError):
    """A construct the learner edition cannot convert; the message names where it is."""


# ----------------------------------------------------------------------------- configuration


@dataclass
class Config:
    """What the learner edition reads from _config.yml."""

    root: Path
    base_url: str  # the website, ending in "/"
    myst: MdParserConfig
    macros: dict[str, str]  # MathJax macros without arguments: name -> expansion
    bibfiles: list[Path]
    cite_id: str  # sphinxcontrib-bibtex's bibtex_cite_id template ("" = numbered ids)
    repository_url: str
    learner_branch: str
    language: str = SOURCE_LANGUAGE
    # (docname, MyST markdown) -> the same in ``language``; (docname, a message) -> its translation
    translate: Callable[[str, str], str] = lambda docname, text: text
    translate_message: Callable[[str, str], str] = lambda docname, text: text

    @property
    def words(self) -> Words:
        return words(self.language)


def _translations():
    """scripts/translations.py, imported by path (scripts/ is not a package)."""
    import importlib.util

    if "translations" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "translations", Path(__file__).with_name("translations.py")
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules["translations"] = module
        spec.loader.exec_module(module)
    return sys.modules["translations"]


def load_config(root: Path, language: str = SOURCE_LANGUAGE) -> Config:
    """Read _config.yml of the book at ``root``, for the edition in ``language``."""
    if language == SOURCE_LANGUAGE:
        cfg = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    else:
        cfg = _translations().edition_config(root, language)
    base_url = (cfg.get("html") or {}).get("baseurl", "")
    if not base_url.startswith(("https://", "http://")):
        raise LearnerEditionError(
            "_config.yml: html.baseurl must be the website's absolute URL (the learner edition "
            f"links to its pages), not {base_url!r}"
        )
    parse = cfg.get("parse") or {}
    sphinx_config = (cfg.get("sphinx") or {}).get("config") or {}
    myst_options = {**parse, **sphinx_config}
    fields = MdParserConfig.__dataclass_fields__
    kwargs = {
        k[5:]: v for k, v in myst_options.items() if k.startswith("myst_") and k[5:] in fields
    }
    kwargs["enable_extensions"] = set(kwargs.get("enable_extensions", ()))
    macros = {}
    tex_macros = ((sphinx_config.get("mathjax3_config") or {}).get("tex") or {}).get("macros", {})
    for name, body in tex_macros.items():
        if isinstance(body, str):
            macros[name] = body
        elif len(body) == 1:
            macros[name] = body[0]
        else:  # a macro with arguments cannot be expanded textually
            raise LearnerEditionError(f"_config.yml: MathJax macro \\{name} takes arguments")
    repo = cfg.get("repository") or {}
    config = Config(
        root=root,
        base_url=base_url.rstrip("/") + "/",
        myst=MdParserConfig(**kwargs),
        macros=macros,
        bibfiles=[root / p for p in cfg.get("bibtex_bibfiles", [])],
        cite_id=sphinx_config.get("bibtex_cite_id", ""),
        repository_url=repo.get("url", ""),
        learner_branch=repo.get("branch", ""),
        language=language,
    )
    if language != SOURCE_LANGUAGE:
        words(language)  # fail early for a language without words
        tr = _translations()
        catalogs = tr.Catalogs(root, language)
        md = make_parser(config.myst)
        config.translate = lambda docname, text: tr.translate_markdown(
            text, catalogs.translator(docname), md
        )
        config.translate_message = catalogs.gettext
    return config


def make_parser(config: MdParserConfig) -> MarkdownIt:
    """The markdown-it parser MyST-NB uses for notebook cells (front matter off)."""
    md = create_md_parser(config, RendererHTML)
    md.disable("front_matter", ignoreInvalid=True)
    return md


# ----------------------------------------------------------------------------- directives


@lru_cache(1)
def directive_classes() -> dict[str, type]:
    """The directive classes whose argument and option syntax the converter parses."""
    from docutils.parsers.rst.directives import admonitions, body, images
    from sphinx.directives.code import CodeBlock
    from sphinx.directives.other import SeeAlso
    from sphinx.directives.patches import MathDirective
    from sphinx_design.dropdown import DropdownDirective
    from sphinx_exercise import directive as ex

    classes = {
        "admonition": admonitions.Admonition,
        "note": admonitions.Note,
        "tip": admonitions.Tip,
        "hint": admonitions.Hint,
        "important": admonitions.Important,
        "attention": admonitions.Attention,
        "caution": admonitions.Caution,
        "warning": admonitions.Warning,
        "danger": admonitions.Danger,
        "error": admonitions.Error,
        "seealso": SeeAlso,
        "dropdown": DropdownDirective,
        "exercise": ex.ExerciseDirective,
        "exercise-start": ex.ExerciseStartDirective,
        "exercise-end": ex.ExerciseEndDirective,
        "solution": ex.SolutionDirective,
        "solution-start": ex.SolutionStartDirective,
        "solution-end": ex.SolutionEndDirective,
        "math": MathDirective,
        "code-block": CodeBlock,
        "code": CodeBlock,
        "epigraph": body.Epigraph,
        "figure": images.Figure,
        "image": images.Image,
    }
    return classes


def parse_directive(token: Token) -> tuple[str, list[str], dict, str]:
    """(name, arguments, options, body) of a ``fence``/``colon_fence`` directive token."""
    name, _, first_line = token.info.strip()[1:].partition("}")
    name = name.strip()
    cls = directive_classes().get(name)
    if cls is None:
        raise LearnerEditionError(
            f"directive {{{name}}} has no learner-edition form "
            "(see the learner-edition section of the course conventions)"
        )
    parsed = parse_directive_text(cls, first_line.strip(), token.content, validate_options=True)
    if parsed.warnings:
        raise LearnerEditionError(f"{{{name}}}: {parsed.warnings[0].msg}")
    return name, parsed.arguments, parsed.options, "\n".join(parsed.body)


def is_directive(token: Token) -> bool:
    return token.type in ("fence", "colon_fence") and token.info.strip().startswith("{")


# ----------------------------------------------------------------------------- the course index


@dataclass
class Target:
    """Something a role can point to: a page, a section, a figure, an exercise, an equation."""

    docname: str  # e.g. "notebooks/02_self_attention"
    anchor: str  # "" for a whole page
    title: str | None  # Markdown text of the default link text; None: no default
    number: str | None = None  # "2.1" for {numref}
    kind: str = "section"  # section, figure, exercise or equation


@dataclass
class Exercise:
    """One exercise of a chapter notebook, as the website and the learner edition number it."""

    chapter: str  # "02"
    number: str  # "2.1"
    label: str
    title: str  # "★ Scaled dot-product attention with a mask"
    stars: int
    minutes: int | None
    notebook: str  # file name
    word: str = "Exercise %s"  # Words.exercise of the edition's language

    @property
    def heading(self) -> str:
        return f"{self.word % self.number} {self.title}"

    @property
    def plain_title(self) -> str:
        return self.title.lstrip("★☆ ").strip()


def chapter_of(path: Path) -> str:
    """'02' for notebooks/02_self_attention.ipynb (the chapter number is the file's prefix)."""
    match = re.match(r"(\d+)_", path.name)
    if not match:
        raise LearnerEditionError(f"{path.name}: a chapter notebook is named NN_slug.ipynb")
    return match.group(1)


def chapter_number(chapter: str) -> str:
    return str(int(chapter))


def exercise_number(path: Path, n: int) -> str:
    return f"{chapter_number(chapter_of(path))}.{n}"


def _walk(tokens: list[Token]):
    for token in tokens:
        yield token
        if token.children:
            yield from _walk(token.children)


def _heading_after(tokens: list[Token], i: int) -> str | None:
    """The Markdown text of the heading right after token i, if there is one."""
    if i + 2 < len(tokens) and tokens[i + 1].type == "heading_open":
        return tokens[i + 2].content
    return None


def _exercise_of(token: Token, path: Path, n: int, cell, word: str = "Exercise %s") -> Exercise:
    name, args, options, _ = parse_directive(token)
    title = args[0] if args else ""
    minutes = None
    meta = cell.metadata.get(MINUTES_KEY, {}) if cell is not None else {}
    if "minutes" in meta:
        minutes = int(meta["minutes"])
    return Exercise(
        chapter=chapter_of(path),
        number=exercise_number(path, n),
        label=options.get("label", ""),
        title=title,
        stars=title.count("★"),
        minutes=minutes,
        notebook=path.name,
        word=word,
    )


@dataclass
class CourseIndex:
    """Every page title and label of the book, to turn roles into links."""

    config: Config
    titles: dict[str, str] = field(default_factory=dict)  # docname -> title
    targets: dict[str, Target] = field(default_factory=dict)  # label -> target
    glossary_doc: str | None = None
    terms: dict[str, str] = field(default_factory=dict)  # lower-case term -> its anchor
    bib: dict[str, str] = field(default_factory=dict)  # cite key -> "Vaswani et al., 2017"

    def url(self, docname: str, anchor: str = "") -> str:
        return f"{self.config.base_url}{docname}.html" + (f"#{anchor}" if anchor else "")


def notebook_sources(root: Path) -> list[Path]:
    return sorted((root / "notebooks").glob("*.ipynb"))


def _markdown_sources(root: Path):
    """(docname, [(cell or None, markdown text), ...]) for every page of the book."""
    for path in sorted((root / "book").glob("*.md")):
        yield (
            path,
            path.relative_to(root).with_suffix("").as_posix(),
            [(None, path.read_text(encoding="utf-8"))],
        )
    for path in notebook_sources(root):
        nb = nbformat.read(path, as_version=4)
        yield (
            path,
            path.relative_to(root).with_suffix("").as_posix(),
            [(c, c.source) for c in nb.cells if c.cell_type == "markdown"]
            + [(c, None) for c in nb.cells if c.cell_type == "code"],
        )


def build_index(config: Config, md: MarkdownIt) -> CourseIndex:
    """Read every page once: titles, labels (sections, figures, exercises, equations), terms."""
    index = CourseIndex(config)
    for path, docname, cells in _markdown_sources(config.root):
        is_notebook = path.suffix == ".ipynb"
        n_exercise = n_figure = n_equation = 0
        for cell, text in cells:
            if text is None:  # a code cell: figures are named in its metadata
                figure = cell.metadata.get("mystnb", {}).get("figure", {})
                if figure.get("name"):
                    n_figure += 1
                    caption = figure.get("caption")
                    index.targets[figure["name"]] = Target(
                        docname,
                        make_id(figure["name"]),
                        caption and config.translate_message(docname, caption),
                        f"{chapter_number(chapter_of(path))}.{n_figure}",
                        "figure",
                    )
                continue
            tokens = md.parse(config.translate(docname, text), {})
            for i, token in enumerate(tokens):
                if (
                    token.type == "heading_open"
                    and token.tag == "h1"
                    and docname not in index.titles
                ):
                    index.titles[docname] = tokens[i + 1].content
                elif token.type == "myst_target":
                    title = _heading_after(tokens, i)
                    index.targets[token.content] = Target(docname, make_id(token.content), title)
                elif token.type == "math_block_label":
                    n_equation += 1
                    index.targets[token.info] = Target(
                        docname,
                        f"equation-{make_id(token.info)}",
                        None,
                        str(n_equation),
                        "equation",
                    )
                elif is_directive(token):
                    name = token.info.strip()[1:].partition("}")[0]
                    if name in ("exercise", "exercise-start") and is_notebook:
                        n_exercise += 1
                        ex = _exercise_of(token, path, n_exercise, cell)
                        if ex.label:
                            index.targets[ex.label] = Target(
                                docname,
                                make_id(ex.label),
                                config.words.exercise % ex.number,
                                ex.number,
                                "exercise",
                            )
                    elif name == "glossary":
                        index.glossary_doc = docname
                        index.terms.update(_glossary_anchors(token.content))
    index.bib = _bib_labels(config.bibfiles)
    return index


def _glossary_anchors(body: str) -> dict[str, str]:
    """The anchor of each term of a {glossary} body, as Sphinx makes it (``term-KV-cache``).

    Sphinx keeps the term's case, folds it to ASCII and numbers the terms it cannot spell
    (Chinese ones); {term} finds a term whatever its case, so the keys are lower case.
    """
    anchors = {}
    for line in body.splitlines():
        if not line.strip() or line[0].isspace() or line.startswith(":"):
            continue  # a definition, a blank line or an option such as :sorted:
        anchor = _sphinx_id(f"term-{line.strip()}")
        if anchor != "term" and anchor not in anchors.values():  # else Sphinx numbers it
            anchors[line.strip().lower()] = anchor
    return anchors


def _bib_labels(bibfiles: list[Path]) -> dict[str, str]:
    """Author-year texts of the bibliography, as the website's author_year style cites them."""
    if not bibfiles:
        return {}
    from pybtex.database import parse_file

    labels = {}
    for bibfile in bibfiles:
        for key, entry in parse_file(str(bibfile)).entries.items():
            people = entry.persons.get("author") or entry.persons.get("editor") or []
            names = [" ".join(p.last_names).replace("{", "").replace("}", "") for p in people]
            if len(names) >= 3:
                who = f"{names[0]} et al."
            elif names:
                who = " and ".join(names)
            else:
                who = entry.fields.get("title", key).replace("{", "").replace("}", "")
            labels[key] = f"{who}, {entry.fields.get('year', 'n.d.')}"
    return labels


# ----------------------------------------------------------------------------- conversion


@dataclass
class NotebookState:
    """What the conversion of one notebook carries from cell to cell."""

    path: Path
    docname: str
    in_solution: bool = False
    in_exercise: bool = False
    n_exercise: int = 0
    cell: object = None  # the cell being converted (for error messages and metadata)
    exercises: list[Exercise] = field(default_factory=list)
    solutions_removed: int = 0


class Converter:
    """Turns MyST markdown into the Markdown/HTML that every Jupyter front end renders."""

    def __init__(self, config: Config, md: MarkdownIt | None = None, index=None):
        self.config = config
        self.md = md or make_parser(config.myst)
        self.index = index or build_index(config, self.md)
        self._macro_re = (
            re.compile(r"\\(" + "|".join(map(re.escape, config.macros)) + r")(?![A-Za-z])")
            if config.macros
            else None
        )

    # --- links -------------------------------------------------------------------------

    def _target(self, label: str, role: str) -> Target:
        target = self.index.targets.get(label)
        if target is None:
            raise LearnerEditionError(f"{{{role}}} points to the unknown label {label!r}")
        return target

    def _doc(self, ref: str, docname: str) -> str:
        """The docname a {doc} reference from ``docname`` points to."""
        if ref.startswith("/"):
            target = ref.lstrip("/")
        else:
            target = normpath(f"{docname.rpartition('/')[0]}/{ref}").lstrip("./")
        target = re.sub(r"\.(md|ipynb)$", "", target)
        if target not in self.index.titles:
            raise LearnerEditionError(f"{{doc}} points to the unknown page {ref!r}")
        return target

    def role(self, name: str, content: str, state: NotebookState) -> str:
        """The Markdown of one role."""
        explicit = re.fullmatch(r"(?s)(.*?)\s*<([^<>]+)>", content)
        text, ref = (explicit.group(1), explicit.group(2)) if explicit else (None, content.strip())
        text = _escape_link_text(text) if text else None
        if name == "ref":
            target = self._target(ref, name)
            text = text or target.title
            if text is None:
                raise LearnerEditionError(f"{{ref}}`{ref}` needs an explicit text")
            return f"[{text}]({self.index.url(target.docname, target.anchor)})"
        if name == "numref":
            target = self._target(ref, name)
            w = self.config.words
            kind = {"figure": w.figure, "exercise": w.exercise, "equation": w.equation}.get(
                target.kind
            )
            if target.number is None or kind is None:
                raise LearnerEditionError(f"{{numref}}`{ref}` points to nothing numbered")
            number = kind % target.number
            text = (
                text.replace("{number}", target.number).replace("%s", target.number)
                if text
                else number
            )
            return f"[{text}]({self.index.url(target.docname, target.anchor)})"
        if name == "eq":
            target = self._target(ref, name)
            return f"[({target.number})]({self.index.url(target.docname, target.anchor)})"
        if name == "doc":
            docname = self._doc(ref, state.docname)
            return f"[{text or self.index.titles[docname]}]({self.index.url(docname)})"
        if name in ("cite", "cite:p", "cite:t", "cite:ps", "cite:ts", "cite:alp", "cite:cts"):
            links = []
            for key in (k.strip() for k in ref.split(",")):
                if key not in self.index.bib:
                    raise LearnerEditionError(f"{{cite}} of the unknown key {key!r}")
                anchor = ""
                if self.config.cite_id:
                    anchor = make_id(self.config.cite_id.format(key=key, bibliography_count=1))
                links.append(
                    f"[{self.index.bib[key]}]({self.index.url('book/references', anchor)})"
                )
            return "; ".join(links) if name.startswith("cite:t") else f"({'; '.join(links)})"
        if name == "term":
            if self.index.glossary_doc is None:
                raise LearnerEditionError("{term} is used but no page has a {glossary}")
            anchor = self.index.terms.get(ref.strip().lower())
            if anchor is None:
                raise LearnerEditionError(
                    f"{{term}} of {ref!r}, which the glossary does not define"
                )
            return f"[{text or ref}]({self.index.url(self.index.glossary_doc, anchor)})"
        if name == "math":
            return f"${self._expand(content)}$"
        if name in ("sub", "sup", "kbd"):
            return f"<{name}>{escape(content)}</{name}>"
        if name == "abbr":
            return escape(re.sub(r"\s*\(.*\)$", "", content))
        raise LearnerEditionError(f"role {{{name}}} has no learner-edition form")

    def _link(self, href: str, state: NotebookState) -> str | None:
        """A website URL for a MyST link to a page or a label, or None to keep it as it is."""
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", href):
            return None  # has a scheme: already absolute (https:, mailto:, ...)
        path, _, anchor = href.partition("#")
        if not path:
            target = self._target(anchor, "link")
            return self.index.url(target.docname, target.anchor)
        docname = self._doc(path, state.docname)
        return self.index.url(docname, make_id(anchor) if anchor else "")

    def _expand(self, math: str) -> str:
        if self._macro_re is None:
            return math
        return self._macro_re.sub(lambda m: self.config.macros[m.group(1)], math)

    # --- markdown ------------------------------------------------------------------------

    def markdown(self, text: str, state: NotebookState) -> str:
        """Convert one markdown cell (or a directive's body)."""
        tokens = self.md.parse(text, {})
        starts = [0]
        for line in text.splitlines(keepends=True):
            starts.append(starts[-1] + len(line))
        if not text.endswith("\n"):
            starts[-1] = len(text)

        def offset(line: int) -> int:
            return starts[min(line, len(starts) - 1)]

        edits: list[tuple[int, int, str]] = []
        solution_from: int | None = 0 if state.in_solution else None
        for token in tokens:
            if token.map is None:
                continue
            start, end = offset(token.map[0]), offset(token.map[1])
            if token.level != 0:  # inside a list or a block quote
                if is_directive(token) or token.type == "myst_target":
                    raise LearnerEditionError(
                        f"{token.info.strip() or token.content}: a directive or label inside a "
                        "list or block quote cannot be converted; put it at the top level"
                    )
                if token.type in ("math_block", "amsmath") and not state.in_solution:
                    found = text.find(token.content, start)
                    if found >= 0 and self._expand(token.content) != token.content:
                        edits.append(
                            (found, found + len(token.content), self._expand(token.content))
                        )
                continue
            if is_directive(token):
                name, args, options, body = parse_directive(token)
                if name == "solution-end":
                    if not state.in_solution:
                        raise LearnerEditionError("a {solution-end} closes no solution")
                    state.in_solution = False
                    edits.append((solution_from, end, ""))
                    solution_from = None
                elif state.in_solution:
                    if name in ("solution-start", "exercise-start"):
                        raise LearnerEditionError(
                            f"{{{name}}} opens before the previous solution is closed"
                        )
                    continue
                elif name == "solution-start":
                    state.in_solution, solution_from = True, start
                    state.solutions_removed += 1
                else:
                    edits.append((start, end, self.directive(name, args, options, body, state)))
                continue
            if state.in_solution:
                continue
            if token.type in ("myst_target", "myst_line_comment", "myst_block_break"):
                edits.append((start, end, ""))
            elif token.type in ("math_block", "math_block_label"):  # the label goes
                edits.append((start, end, f"$$\n{self._expand(token.content.strip())}\n$$\n"))
            elif token.type == "amsmath":  # \begin{align} ... as it is (its map ends too early)
                found = text.find(token.content, start)
                edits.append((found, found + len(token.content), self._expand(token.content)))
            elif token.type == "front_matter":
                raise LearnerEditionError("front matter in a markdown cell")
        if state.in_solution:
            edits.append((solution_from, len(text), ""))
        # Inline constructs, in the blocks that are kept as they are.
        cursor = 0
        for token in tokens:
            if token.type != "inline" or token.map is None:
                continue
            start = offset(token.map[0])
            if any(s <= start < e for s, e, _ in edits):
                continue
            cursor = max(cursor, start)
            for child in _walk(token.children or []):
                cursor = self._inline(child, text, cursor, edits, state)
        out = text
        for s, e, replacement in sorted(edits, key=lambda x: x[0], reverse=True):
            out = out[:s] + replacement + out[e:]
        return _tidy(out)

    def _inline(self, child: Token, text: str, cursor: int, edits, state) -> int:
        """Record the edit of one inline token found from ``cursor`` on; return the new cursor."""
        if child.type == "myst_role":
            name = child.meta["name"]
            pattern = re.compile(
                r"\{" + re.escape(name) + r"\}(`+)" + re.escape(child.content) + r"\1"
            )
            found = pattern.search(text, cursor)
            if not found:
                raise LearnerEditionError(f"cannot locate the role {{{name}}}`{child.content}`")
            edits.append((found.start(), found.end(), self.role(name, child.content, state)))
            return found.end()
        if child.type in ("math_inline", "math_inline_double"):
            delim = "$$" if child.type == "math_inline_double" else "$"
            found = text.find(f"{delim}{child.content}{delim}", cursor)
            if found >= 0:
                end = found + len(child.content) + 2 * len(delim)
                expanded = self._expand(child.content)
                if expanded != child.content:
                    edits.append((found, end, f"{delim}{expanded}{delim}"))
                return end
            return cursor
        if child.type == "code_inline":
            found = text.find(child.content, cursor)
            return found + len(child.content) if found >= 0 else cursor
        if child.type == "link_open":
            href = child.attrs.get("href", "")
            url = self._link(href, state)
            if url is not None:
                found = text.find(f"]({href}", cursor)
                if found < 0:
                    raise LearnerEditionError(f"cannot locate the link to {href!r}")
                edits.append((found + 2, found + 2 + len(href), url))
                return found + 2 + len(href)
            return cursor
        if child.type == "image":
            src = child.attrs.get("src", "")
            if not re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*:|data:)", src):
                raise LearnerEditionError(
                    f"image {src!r}: the learner notebook does not carry files; draw it in a code "
                    "cell or use an absolute URL"
                )
            return cursor
        if child.type == "substitution_inline":
            raise LearnerEditionError(f"substitution {{{{{child.content}}}}} in a notebook")
        return cursor

    # --- directives ------------------------------------------------------------------------

    def directive(self, name: str, args, options, body: str, state: NotebookState) -> str:
        """The Markdown/HTML that replaces one directive."""
        if name in ("exercise", "exercise-start"):
            if state.in_exercise:
                raise LearnerEditionError("an exercise opens before the previous one is closed")
            state.n_exercise += 1
            title = args[0] if args else ""
            ex = Exercise(
                chapter=chapter_of(state.path),
                number=exercise_number(state.path, state.n_exercise),
                label=options.get("label", ""),
                title=title,
                stars=title.count("★"),
                minutes=(
                    state.cell.metadata.get(MINUTES_KEY, {}).get("minutes") if state.cell else None
                ),
                notebook=state.path.name,
                word=self.config.words.exercise,
            )
            state.exercises.append(ex)
            heading = f"### {ex.heading}".rstrip() + "\n\n"
            if name == "exercise-start":
                state.in_exercise = True
                return heading
            return f"{heading}\n{self.markdown(body, state)}\n"
        if name == "exercise-end":
            if not state.in_exercise:
                raise LearnerEditionError("an {exercise-end} closes no exercise")
            state.in_exercise = False
            return ""
        if name == "solution":
            state.solutions_removed += 1
            return ""
        if name == "dropdown" or "dropdown" in options.get("class", []):
            default = self.config.words.details if name == "dropdown" else self._title(name)
            title = args[0] if args else default
            return self._details(title, body, "open" in options, state)
        if name in ADMONITIONS or name == "admonition":
            return self._admonition(name, args, options, body, state)
        if name == "math":
            return f"$$\n{self._expand(body.strip())}\n$$\n"
        if name in ("code-block", "code"):
            language = args[0] if args else ""
            return f"```{language}\n{body}\n```\n"
        if name == "epigraph":
            return self._quote(body, state)
        if name in ("figure", "image"):
            self._inline(Token("image", "img", 0, attrs={"src": args[0]}), "", 0, [], state)
            alt = options.get("alt", "")
            caption = f"\n\n*{self.markdown(body, state).strip()}*" if body.strip() else ""
            return f"![{alt}]({args[0]}){caption}\n"
        raise LearnerEditionError(f"directive {{{name}}} has no learner-edition form")

    def _title(self, name: str) -> str:
        return self.config.words.admonition(name)

    def _admonition(self, name, args, options, body, state) -> str:
        title = args[0] if name == "admonition" else self._title(name)
        return self._quote(f"**{title}**\n\n{body}", state)

    def _quote(self, text: str, state) -> str:
        """A block quote: the one styled block that every renderer draws, math included.

        JupyterLab, Colab, VS Code, nbconvert and GitHub draw it with a bar on the left. (An HTML
        <div> is coloured in JupyterLab, but jupyterlab-myst leaves the math inside raw HTML
        untypeset.) Display math and code blocks are refused: Jupyter's math extraction would
        keep the quote's "> " inside them.
        """
        for token in self.md.parse(text, {}):
            if token.type in ("math_block", "math_block_label", "amsmath", "fence", "code_block"):
                raise LearnerEditionError(
                    "an admonition holds display math or a code block, which a block quote "
                    "cannot carry to every Jupyter front end: use inline math or move it out"
                )
        lines = self.markdown(text, state).strip().splitlines()
        return "\n".join(f"> {line}" if line.strip() else ">" for line in lines) + "\n"

    def _details(self, title: str, body: str, is_open: bool, state) -> str:
        summary = self.md.renderInline(self.markdown(title, state).strip())
        opening = "<details open>" if is_open else "<details>"
        inside = self.markdown(body, state).strip()
        return f"{opening}\n<summary>{summary}</summary>\n\n{inside}\n\n</details>\n"

    # --- notebooks --------------------------------------------------------------------------

    def notebook(self, path: Path) -> tuple[nbformat.NotebookNode, NotebookState]:
        """The learner edition of one notebook, and what was done to it."""
        nb = nbformat.read(path, as_version=4)
        docname = path.relative_to(self.config.root).with_suffix("").as_posix()
        state = NotebookState(path=path, docname=docname)
        cells = []
        for index, cell in enumerate(nb.cells):
            state.cell = cell
            tags = cell.metadata.get("tags", [])
            try:
                if cell.cell_type == "markdown":
                    if "remove-cell" in tags or "remove_cell" in tags:
                        continue  # website-only prose
                    source = self.markdown(self.config.translate(docname, cell.source), state)
                    if not cells and index == 0:
                        note = self.config.words.note.format(url=self.index.url(docname))
                        source = _add_note(source, note, self.md)
                    if source.strip():
                        cell = copy.deepcopy(cell)
                        cell.source = source
                        cells.append(cell)
                elif state.in_solution:
                    continue
                else:
                    cell = copy.deepcopy(cell)
                    if cell.cell_type == "code" and state.in_exercise:
                        cell.outputs, cell.execution_count = [], None
                    cells.append(cell)
                    caption = self._caption(cell, state)
                    if caption:  # the website shows it under the figure; Jupyter would not
                        cells.append(caption)
            except LearnerEditionError as err:
                raise LearnerEditionError(
                    f"{path.name}, cell {index} ({cell.get('id')}): {err}"
                ) from None
        if state.in_solution or state.in_exercise:
            what = "{solution-start}" if state.in_solution else "{exercise-start}"
            raise LearnerEditionError(f"{path.name}: a {what} is never closed")
        nb.cells = cells
        nb.metadata["learner_edition"] = {
            "source": docname + ".ipynb",
            "website": self.index.url(docname),
        }
        if self.config.language != SOURCE_LANGUAGE:
            nb.metadata["learner_edition"]["language"] = self.config.language
        nbformat.validate(nb)
        return nb, state

    def _caption(self, cell, state: NotebookState):
        """A markdown cell with the caption of a figure cell ("Fig. 2.1. ..."), or None."""
        figure = cell.metadata.get("mystnb", {}).get("figure", {})
        has_image = any("image/png" in o.get("data", {}) for o in cell.get("outputs", []))
        if not figure.get("caption") or not has_image:
            return None
        target = self.index.targets.get(figure.get("name", ""))
        caption = self.config.translate_message(state.docname, figure["caption"])
        text = self.markdown(caption, state).strip()
        if target and target.number:
            words = self.config.words
            text = words.caption.format(figure=words.figure % target.number, caption=text)
        caption = nbformat.v4.new_markdown_cell(text)
        caption.id = f"{cell.get('id', 'figure')}-caption"[-64:]
        return caption


def _escape_link_text(text: str) -> str:
    return re.sub(r"([\\`*_\[\]<>])", r"\\\1", text)


def _tidy(text: str) -> str:
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip("\n")


def _add_note(source: str, note: str, md: MarkdownIt) -> str:
    """Put the learner-edition note under the title (the first heading) of the title cell."""
    tokens = md.parse(source, {})
    heading = next((t for t in tokens if t.type == "heading_open"), None)
    lines = source.splitlines()
    at = heading.map[1] if heading is not None else 0
    return _tidy("\n".join(lines[:at] + ["", note, ""] + lines[at:]))


def exercises(root: Path, converter: Converter | None = None) -> list[Exercise]:
    """Every exercise of the course, in chapter order (what instructors.md lists)."""
    converter = converter or Converter(load_config(root))
    found = []
    for path in notebook_sources(root):
        found.extend(converter.notebook(path)[1].exercises)
    return found


# ----------------------------------------------------------------------------- the edition


def write_zip(notebooks: list[Path], zip_path: Path, folder: str = ZIP_FOLDER) -> None:
    """A reproducible zip (fixed timestamps, sorted) of the learner notebooks in one folder."""
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(notebooks):
            info = zipfile.ZipInfo(f"{folder}/{path.name}", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes())


def build(
    root: Path,
    out: Path,
    zip_path: Path | None = None,
    quiet: bool = False,
    language: str = SOURCE_LANGUAGE,
) -> list[Path]:
    """Write the learner edition of every chapter to OUT/notebooks, and the zip."""
    converter = Converter(load_config(root, language))
    (out / "notebooks").mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebook_sources(root):
        nb, state = converter.notebook(path)
        target = out / "notebooks" / path.name
        nbformat.write(nb, target)
        written.append(target)
        if not quiet:
            print(
                f"{path.name}: {len(state.exercises)} exercise(s), "
                f"{state.solutions_removed} solution(s) removed"
            )
    for stale in set((out / "notebooks").glob("*.ipynb")) - set(written):
        stale.unlink()  # a chapter renamed or removed since the last run
    folder = ZIP_FOLDER if language == SOURCE_LANGUAGE else f"{ZIP_FOLDER}-{language}"
    write_zip(written, zip_path or out / ZIP_NAME, folder)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path("."), help="the book (holds _config.yml)")
    parser.add_argument("--out", type=Path, default=Path("_build/learner"), help="output folder")
    parser.add_argument(
        "--language",
        default=SOURCE_LANGUAGE,
        help="an edition of _config.yml's course_editions (zh_CN: the prose from locale/zh_CN)",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        written = build(args.root.resolve(), args.out, language=args.language)
    except LearnerEditionError as err:
        raise SystemExit(f"learner edition: {err}") from None
    zip_path = args.out / ZIP_NAME
    print(
        f"learner edition: {len(written)} notebooks in {args.out / 'notebooks'}, "
        f"{zip_path} ({zip_path.stat().st_size / 1e6:.1f} MB), "
        f"{time.perf_counter() - started:.1f} s"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
