"""Sphinx extension of the course website: what Jupyter Book 1 and its theme do not do alone.

- Chapters are numbered from their file name (``notebooks/05_x.ipynb`` is chapter 5), in the page
  title and therefore in the sidebar, Previous/Next, the browser tab and search results; figures
  and exercises are numbered per chapter ("Fig. 5.3", "Exercise 2.1"). The number never depends
  on a chapter's position in ``_toc.yml``, so adding chapter 01 (or 12-14) later keeps them right.
- Every figure image gets its caption, in plain words, as alt text (not a file name).
- Thebe (live code, unused here) is dropped: its inline script was declared twice on every page.
- ``book/assets/site/`` (course.js, course.css) is served and loaded on every page: the fix of the
  mobile navigation buttons, solution titles that open their solution, wrapping of long code.
- A dark-mode logo (book/assets/logo-dark.svg): the title text of logo.svg is dark blue.
- jieba, when installed (requirements.txt), only logs warnings: no build noise.

Registered in _config.yml under ``sphinx: local_extensions``.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.environment.collectors.toctree import TocTreeCollector

SITE_ASSETS = Path(__file__).resolve().parents[1] / "assets" / "site"
CHAPTER_RE = re.compile(r"^notebooks/(\d+)_")


def chapter_number(docname: str) -> int | None:
    """Return the chapter number of a page from its file name (notebooks/05_x -> 5), else None."""
    match = CHAPTER_RE.match(docname)
    return int(match.group(1)) if match else None


# ----------------------------------------------------------------------------- chapter titles


def number_chapter_title(app: Sphinx, doctree: nodes.document) -> None:
    """Put "N. " in front of a chapter's title, before Sphinx records the title.

    Runs on doctree-read ahead of Sphinx's title collector, so the numbered title is what the
    sidebar, Previous/Next links, <title> and the search index show. The title's rawsource is
    left alone, so translation catalogs keep the plain title as their message.
    """
    if app.builder.name == "gettext":
        return
    number = chapter_number(app.env.docname)
    if number is None:
        return
    for section in doctree.findall(nodes.section):
        title = section.next_node(nodes.title)
        if title is not None and not title.get("course-numbered"):
            title.insert(0, nodes.inline("", f"{number}. ", classes=["section-number"]))
            title["course-numbered"] = True
        return  # only the first (page) title


# ----------------------------------------------------------------------------- figures, exercises


def number_per_chapter(app: Sphinx, env: BuildEnvironment) -> list[str]:
    """Re-number figures and exercises per chapter: (chapter, k) instead of one book-wide count.

    Sphinx numbers enumerable nodes (figures, sphinx-exercise's exercises) with the section
    numbers of a numbered toctree. The chapters are not numbered that way (their number comes
    from the file name), so their number is lent to Sphinx for this one pass and then removed:
    left in place, Sphinx would also print it before every heading of the page.
    """
    collector = TocTreeCollector()  # its numbering methods keep no state of their own
    lent = {}
    for docname in env.found_docs:
        number = chapter_number(docname)
        if number is not None and not env.toc_secnumbers.get(docname):
            lent[docname] = {"": (number,)}
    env.toc_secnumbers.update(lent)
    try:
        changed = collector.assign_figure_numbers(env)
    finally:
        for docname in lent:
            env.toc_secnumbers.pop(docname, None)
    return changed


def configure(app: Sphinx, config) -> None:
    """Per-chapter numbering, and a logo whose title text is light in dark mode."""
    config.numfig = True
    config.numfig_secnum_depth = 1
    logo = config.html_theme_options.setdefault("logo", {})
    logo.setdefault("image_dark", "book/assets/logo-dark.svg")  # path from the book's root


# ----------------------------------------------------------------------------- alt text

_TEX_WORDS = {
    r"\cdot": "·",
    r"\times": "×",
    r"\infty": "∞",
    r"\le": "≤",
    r"\ge": "≥",
    r"\leq": "≤",
    r"\geq": "≥",
    r"\approx": "≈",
    r"\varepsilon": "ε",
    r"\epsilon": "ε",
    r"\sigma": "σ",
    r"\pi": "π",
    r"\log": "log",
    r"\dots": "…",
    r"\ldots": "…",
    r"\top": "ᵀ",
    r"\to": "→",
    r"\alpha": "α",
    r"\beta": "β",
    r"\theta": "θ",
    r"\lambda": "λ",
    r"\mu": "μ",
}


def plain_math(tex: str) -> str:
    """Turn a short TeX formula into plain text for alt text: \\sqrt{d_k} -> √(d_k)."""
    text = re.sub(r"\\(?:text|mathrm|operatorname|mathbf|mathit)\{([^{}]*)\}", r"\1", tex)
    text = re.sub(r"\\sqrt\{([^{}]*)\}", r"√(\1)", text)
    text = re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", r"(\1)/(\2)", text)
    for word in sorted(_TEX_WORDS, key=len, reverse=True):
        text = re.sub(re.escape(word) + r"(?![A-Za-z])", _TEX_WORDS[word], text)
    text = re.sub(r"\\[,;:! ]", " ", text)
    text = re.sub(r"\\([A-Za-z]+)", r"\1", text)  # any other command: its name
    text = text.replace("{", "").replace("}", "").replace("\\", "")
    return re.sub(r"\s+", " ", text).strip()


def caption_text(caption: nodes.Element) -> str:
    parts = []
    for node in caption.findall(nodes.Text):
        parent = node.parent
        if isinstance(parent, nodes.math):
            parts.append(plain_math(node.astext()))
        else:
            parts.append(node.astext())
    return re.sub(r"\s+", " ", "".join(parts)).strip()


def alt_from_caption(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Give each figure's image its caption as alt text, unless the source set one."""
    for figure in doctree.findall(nodes.figure):
        caption = figure.next_node(nodes.caption)
        if caption is None:
            continue
        text = caption_text(caption)
        for image in figure.findall(nodes.image):
            if not image.get("alt") or image["alt"] == image.get("uri"):
                image["alt"] = text


# ----------------------------------------------------------------------------- assets


def add_static_path(app: Sphinx) -> None:
    app.config.html_static_path.append(str(SITE_ASSETS))


def drop_thebe(app: Sphinx, pagename, templatename, context, doctree) -> None:
    """Remove Thebe's scripts and style sheet (the book does not use live code)."""
    scripts = context.get("script_files")
    if scripts is not None:
        scripts[:] = [
            js
            for js in scripts
            if "THEBE_JS_URL" not in str(getattr(js, "attributes", {}).get("body", ""))
            and "sphinx-thebe" not in str(getattr(js, "filename", js) or "")
        ]
    styles = context.get("css_files")
    if styles is not None:
        styles[:] = [
            css for css in styles if "sphinx-thebe" not in str(getattr(css, "filename", css))
        ]


def quiet_jieba(app: Sphinx) -> None:
    try:
        import jieba
    except ImportError:
        return
    jieba.setLogLevel(logging.WARNING)


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", configure)
    app.connect("builder-inited", add_static_path)
    app.connect("builder-inited", quiet_jieba)
    app.connect("doctree-read", number_chapter_title, priority=100)
    app.connect("env-get-updated", number_per_chapter, priority=900)
    app.connect("doctree-resolved", alt_from_caption)
    app.connect("html-page-context", drop_thebe)
    app.add_js_file("course.js", defer="defer")
    app.add_css_file("course.css")
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
