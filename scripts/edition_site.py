"""Sphinx extension: the language editions of the website (English, 中文), loaded by _config.yml.

- **Switch:** every page's header links to the same page in each other edition (EN ⇄ 中文), by a
  relative link that works in the published layout (English at the site's root, each other
  edition in its folder, ``course_editions`` in _config.yml) and in the local builds
  (``make book-zh`` links ``_build/html/zh`` to ``_build/html-zh``). Each page also names its
  translations for search engines (``<link rel="alternate" hreflang>``).
- **The site's own strings** (title, author, copyright, footer, folded-code labels) are messages
  of a catalog of their own, ``site``: the gettext build writes ``site.pot`` beside the pages'
  catalogs, and a translated build takes them from ``locale/<language>/LC_MESSAGES/site.po``.
  Its logo is ``locale/<language>/logo.svg`` (and ``logo-dark.svg``) where there is one.
- **Figures:** a translated edition says once, on its first page, that the text drawn inside the
  plots stays English (the captions and alt texts are translated).
- **Display math and glossary terms** are not messages (they are the same in every language);
  inline math stays in its paragraph's message, and scripts/check_translations.py checks that
  it is kept.
- **Exercise titles** become messages: sphinx-exercise leaves its title node without a source,
  which Sphinx's i18n skips as a built-in string, so the Chinese site showed English titles.
- **Search words:** the glossary's Chinese terms are added to jieba's dictionary, so a search for
  多头注意力 finds the pages that use the term (jieba alone cuts it into 多头 + 注意力, and the
  search box looks the whole word up). The search language itself is _config.yml's.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.builders.gettext import MsgOrigin
from sphinx.locale import init as init_locale
from sphinx.transforms import SphinxTransform
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging
from sphinx.util.i18n import docname_to_domain

LOGGER = logging.getLogger(__name__)
ASSETS = Path(__file__).resolve().parent / "edition_assets"
SOURCE_LANGUAGE = "en"
SITE_DOMAIN = "site"  # the catalog of the site's own strings (scripts/translations.py)
CJK = re.compile(r"[\u3400-\u9fff]")
CODE_PROMPT_TYPES = ("source", "output", "outputs", "content")  # myst_nb.sphinx_.HideInputCells
FIGURE_NOTE = (
    "The figures are the same as on the English site: their captions are translated, but the "
    "titles, axis labels and legends drawn inside the images are in English."
)


# ----------------------------------------------------------------------------- the site's strings


def _language(config) -> str:
    return (config.language or SOURCE_LANGUAGE).replace("-", "_")


def code_prompts(config) -> list[str]:
    """The labels of folded code cells, as MyST-NB writes them ("Show code cell source")."""
    return [
        template.replace("{type}", kind)
        for kind in CODE_PROMPT_TYPES
        for template in (config.nb_code_prompt_show, config.nb_code_prompt_hide)
    ]


def site_messages(config) -> list[str]:
    """The site's own strings, in English (what site.pot holds)."""
    footer = (config.html_theme_options or {}).get("extra_footer") or ""
    found = [config.html_title, config.author, config.copyright, footer.strip(), FIGURE_NOTE]
    found += code_prompts(config)
    return [m for m in dict.fromkeys(found) if m]


def site_catalog(app: Sphinx) -> dict[str, str]:
    """The finished translations of site.po of the build's language (empty for English)."""
    language = _language(app.config)
    if language == SOURCE_LANGUAGE:
        return {}
    for folder in app.config.locale_dirs:
        path = Path(app.srcdir, folder, language, "LC_MESSAGES", f"{SITE_DOMAIN}.po")
        if path.is_file():
            return _read_site_po(str(path), path.stat().st_mtime_ns)
    return {}


@lru_cache(maxsize=4)
def _read_site_po(path: str, mtime_ns: int) -> dict[str, str]:
    from babel.messages.pofile import read_po

    with open(path, "rb") as f:
        catalog = read_po(f)
    return {
        m.id: m.string
        for m in catalog
        if m.id and isinstance(m.string, str) and m.string and not m.fuzzy
    }


def translate_site_strings(app: Sphinx, config) -> None:
    """Title, author, copyright and footer in the build's language (config-inited)."""
    catalog = site_catalog(app)
    if not catalog:
        return
    config.html_title = catalog.get(config.html_title, config.html_title)
    config.author = catalog.get(config.author, config.author)
    config.copyright = catalog.get(config.copyright, config.copyright)
    options = config.html_theme_options
    footer = (options.get("extra_footer") or "").strip()
    if footer:
        options["extra_footer"] = catalog.get(footer, footer)


def register_site_messages(app: Sphinx) -> None:
    """Put the site's strings into site.pot when the gettext builder runs (builder-inited)."""
    if app.builder.name != "gettext":
        return
    for message in site_messages(app.config):
        app.builder.catalogs[SITE_DOMAIN].add(message, MsgOrigin("_config.yml", 0))


class TranslateCodePrompts(SphinxPostTransform):
    """ "Show code cell source" and its kin in the build's language (after MyST-NB adds them)."""

    default_priority = 250  # after myst_nb's HideInputCells (199)
    formats = ("html",)

    def run(self, **kwargs) -> None:
        if _language(self.config) == SOURCE_LANGUAGE:
            return
        from myst_nb.sphinx_ import HideCodeCellNode

        catalog = site_catalog(self.app)
        for node in self.document.findall(HideCodeCellNode):
            for key in ("prompt_show", "prompt_hide"):
                node[key] = catalog.get(node[key], node[key])


class KeepUntranslatedOut(SphinxTransform):
    """Display math and glossary terms are not messages: every edition shows them as written.

    Sphinx extracts a math block like a paragraph, so every equation would wait in the catalogs
    for a translator to copy it unchanged (inline math stays inside its paragraph's message).
    The glossary already names each term in English and Chinese, and {term} references in
    every language point to those names, so its terms stay; their definitions are messages.
    """

    default_priority = 5  # before Sphinx's Locale (20) and the gettext builder's UIDs (880)

    def apply(self, **kwargs) -> None:
        for node in self.document.findall(nodes.math_block):
            node["translatable"] = False
        for glossary in self.document.findall(addnodes.glossary):
            for term in glossary.findall(nodes.term):
                term["translatable"] = False


class TranslateTocCaptions(SphinxTransform):
    """Translate the captions of the toctrees that sphinx-external-toc inserts from _toc.yml.

    The gettext build extracts them ("Start here", "Attention, step by step") into the root
    page's catalog, but the toctrees are inserted (priority 100) after Sphinx's Locale transform
    (20) has translated the page, so the sidebar of a translated edition kept English captions.
    """

    default_priority = 101  # after sphinx_external_toc's InsertToctrees (100)

    def apply(self, **kwargs) -> None:
        if _language(self.config) == SOURCE_LANGUAGE or self.app.builder.name == "gettext":
            return
        # Only the pages that hold a part of _toc.yml have captions: load a catalog for those
        # alone (each init_locale call adds the .mo files to the domain's translator again).
        captioned = [t for t in self.document.findall(addnodes.toctree) if t.get("caption")]
        if not captioned:
            return
        domain = docname_to_domain(self.env.docname, self.config.gettext_compact)
        dirs = [str(Path(self.env.srcdir) / d) for d in self.config.locale_dirs]
        catalog, has_catalog = init_locale(dirs, self.config.language, domain)
        if has_catalog:
            for toctree in captioned:
                toctree["caption"] = catalog.gettext(toctree["caption"])


# ----------------------------------------------------------------------------- the switch


def _hreflang(language: str) -> str:
    return language.replace("_", "-")


def configure(app: Sphinx, config) -> None:
    """Check the editions, add the switch to the article header, translate the site's strings."""
    editions = config.course_editions
    language = _language(config)
    if language not in editions:
        raise ValueError(
            f"language {language!r} has no edition in course_editions ({', '.join(editions)})"
        )
    config.templates_path.append(str(ASSETS / "templates"))
    config.html_static_path.append(str(ASSETS / "static"))
    options = config.html_theme_options
    end = options.get("article_header_end", "article-header-buttons.html")
    end = [e.strip() for e in end.split(",")] if isinstance(end, str) else list(end)
    if "edition-switch.html" not in end:
        options["article_header_end"] = ["edition-switch.html", *end]
    translate_site_strings(app, config)
    use_edition_logo(app, config, language)


def use_edition_logo(app: Sphinx, config, language: str) -> None:
    """A translated edition's own logo, when its locale folder has one (logo.svg, logo-dark.svg).

    The English logo draws the title in English; the Chinese one draws 自注意力正解.
    """
    if language == SOURCE_LANGUAGE:
        return
    for folder in config.locale_dirs:
        base = Path(folder) / language
        if (Path(app.srcdir) / base / "logo.svg").is_file():
            config.html_logo = (base / "logo.svg").as_posix()
            if (Path(app.srcdir) / base / "logo-dark.svg").is_file():
                logo = config.html_theme_options.setdefault("logo", {})
                logo["image_dark"] = (base / "logo-dark.svg").as_posix()
            return


def add_edition_links(app: Sphinx, pagename, templatename, context, doctree) -> None:
    """The same page in every edition, as relative links (html-page-context)."""
    editions = app.config.course_editions
    language = _language(app.config)
    here = editions[language].get("path", "")
    page = app.builder.get_target_uri(pagename)
    to_root = "../" * (page.count("/") + here.count("/"))  # up to the English site's root
    base = app.config.html_baseurl or ""
    root_url = base[: -len(here)] if here and base.endswith(here) else base
    links, alternates = [], []
    for lang, edition in editions.items():
        folder = edition.get("path", "")
        links.append(
            {
                "language": lang,
                "hreflang": _hreflang(lang),
                "label": edition.get("label", lang),
                "title": edition.get("title", edition.get("label", lang)),
                "href": to_root + folder + page,
                "current": lang == language,
            }
        )
        if root_url:
            alternates.append(
                f'<link rel="alternate" hreflang="{_hreflang(lang)}" '
                f'href="{root_url.rstrip("/")}/{folder}{page}" />'
            )
    context["course_editions"] = links
    if alternates:
        context["metatags"] = context.get("metatags", "") + "\n".join(alternates) + "\n"


# ----------------------------------------------------------------------------- figures


def add_figure_note(app: Sphinx, doctree: nodes.document) -> None:
    """On a translated edition's first page: the plots' own text is English (doctree-read)."""
    if _language(app.config) == SOURCE_LANGUAGE or app.builder.name == "gettext":
        return
    if app.env.docname != app.config.root_doc:
        return
    catalog = site_catalog(app)
    section = doctree.next_node(nodes.section)
    if section is None:
        return
    note = nodes.note("", nodes.paragraph("", catalog.get(FIGURE_NOTE, FIGURE_NOTE)))
    note["classes"].append("edition-figure-note")
    first_subsection = next(
        (i for i, c in enumerate(section) if isinstance(c, nodes.section)), None
    )
    section.insert(len(section) if first_subsection is None else first_subsection, note)


# ----------------------------------------------------------------------------- exercise titles


def _with_translatable_title(directive: type) -> type:
    """A sphinx-exercise directive whose title (its argument) is a message like any other."""
    from sphinx_exercise.nodes import exercise_subtitle

    class TranslatableTitle(directive):
        def run(self):
            result = super().run()
            if self.arguments:
                source, line = self.state_machine.get_source_and_line(self.lineno)
                for node in result:
                    for subtitle in node.findall(exercise_subtitle):
                        subtitle.rawsource = self.arguments[0]
                        subtitle.source, subtitle.line = source, line
                        break
            return result

    TranslatableTitle.__name__ = directive.__name__
    return TranslatableTitle


def refresh_exercise_registry(app: Sphinx, doctree: nodes.document) -> None:
    """Let solutions take their exercise's translated title (doctree-read, translated builds).

    sphinx-exercise keeps a copy of each exercise, made before Sphinx translated the page, and
    titles the solution ("Solution to Exercise 2.1 (title)") from that copy.
    """
    if _language(app.config) == SOURCE_LANGUAGE or app.builder.name == "gettext":
        return
    from sphinx_exercise.nodes import exercise_enumerable_node, exercise_node

    registry = getattr(app.env, "sphinx_exercise_registry", {})
    for node in doctree.findall(lambda n: isinstance(n, (exercise_node, exercise_enumerable_node))):
        entry = registry.get(node.get("label", ""))
        if entry and entry.get("docname") == app.env.docname:
            entry["node"] = node.deepcopy()


def collect_exercise_titles(app: Sphinx, doctree: nodes.document) -> None:
    """Remember a page's exercise titles for its catalog (doctree-read, gettext builder).

    sphinx-exercise rebuilds the title nodes after reading (its post-transform numbers them), so
    the gettext builder, which extracts the resolved page, never sees the titles themselves. A
    translated build does translate them: it translates while reading, before the rebuild.
    """
    if app.builder.name != "gettext":
        return
    from sphinx_exercise.nodes import exercise_subtitle

    titles = [(n.rawsource, n.source, n.line) for n in doctree.findall(exercise_subtitle)]
    app.env.course_exercise_titles[app.env.docname] = [t for t in titles if t[0]]


def add_exercise_titles(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Put the page's exercise titles into its catalog (doctree-resolved, gettext builder)."""
    if app.builder.name != "gettext":
        return
    from sphinx.util.i18n import docname_to_domain

    catalog = app.builder.catalogs[docname_to_domain(docname, app.config.gettext_compact)]
    for text, source, line in getattr(app.env, "course_exercise_titles", {}).get(docname, []):
        catalog.add(text.replace("\n", " ").strip(), MsgOrigin(source, line))


def init_env(app: Sphinx, env, docnames) -> None:
    if not hasattr(env, "course_exercise_titles"):
        env.course_exercise_titles = {}


def purge_doc(app: Sphinx, env, docname: str) -> None:
    getattr(env, "course_exercise_titles", {}).pop(docname, None)


# ----------------------------------------------------------------------------- search


def add_search_words(app: Sphinx, env) -> None:
    """Teach jieba the glossary's Chinese terms before the search index is written (env-updated)."""
    if app.builder.format != "html" or not str(app.config.html_search_language or "").startswith(
        "zh"
    ):
        return
    try:
        import jieba
    except ImportError:
        return
    terms = env.get_domain("std").objects
    words = sorted({name for kind, name in terms if kind == "term" and CJK.search(name)})
    for word in words:
        if " " not in word:  # jieba's words hold no spaces ("KV 缓存" is found as two words)
            jieba.add_word(word)
    LOGGER.info(f"search: {len(words)} Chinese glossary terms added to jieba's dictionary")


def setup(app: Sphinx) -> dict:
    app.setup_extension("sphinx_exercise")
    from sphinx_exercise import directive as ex

    for name, directive in (
        ("exercise", ex.ExerciseDirective),
        ("exercise-start", ex.ExerciseStartDirective),
    ):
        app.add_directive(name, _with_translatable_title(directive), override=True)
    app.add_config_value(
        "course_editions", {SOURCE_LANGUAGE: {"path": "", "label": "EN"}}, "html", [dict]
    )
    app.connect("config-inited", configure)
    app.connect("builder-inited", register_site_messages)
    app.connect("env-before-read-docs", init_env)
    app.connect("env-purge-doc", purge_doc)
    app.connect("doctree-read", add_figure_note)
    app.connect("doctree-read", collect_exercise_titles)
    app.connect("doctree-read", refresh_exercise_registry)
    app.connect("doctree-resolved", add_exercise_titles)
    app.connect("env-updated", add_search_words)
    app.connect("html-page-context", add_edition_links)
    app.add_transform(KeepUntranslatedOut)
    app.add_transform(TranslateTocCaptions)
    app.add_post_transform(TranslateCodePrompts)
    app.add_css_file("edition.css")
    # env_version: bump it when a change here changes what is read (messages, transforms), so
    # Sphinx re-reads every page instead of reusing doctrees made by the older code.
    return {
        "version": "1.0",
        "env_version": 3,
        "parallel_read_safe": True,
        "parallel_write_safe": True,
    }
