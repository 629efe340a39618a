"""Translated editions of the course (the Chinese one first) from the same sources.

The website is translated the standard Sphinx way: the gettext builder extracts every message
(paragraph, heading, table cell, caption, admonition title ...) of the book's pages and of the
notebooks' markdown into one catalog per page; translators fill ``locale/<language>/LC_MESSAGES/
<page>.po``; a build with ``language: <language>`` puts the translations in place. Code cells and
their outputs are not messages: they are shared by every edition, so the proofs stay single-source.

What differs between editions is said once, in _config.yml: ``sphinx.config.course_editions``
names each edition's language, its folder on the published website (English at the root, Chinese
under ``zh/``) and its label in the language switch. ``edition_config`` derives an edition's
configuration from _config.yml and nothing else; ``scripts/edition_site.py`` (a Sphinx extension)
adds the language switch and translates the site's own strings (title, footer) from the ``site``
catalog.

Usage (the Makefile's `make translations`, `make book-zh` and `make learner-zh` call it):

    python scripts/translations.py update [--language zh_CN]   # regenerate .pot, update .po
    python scripts/translations.py build zh_CN --out _build/html-zh [--strict]
    python scripts/translations.py status [--language zh_CN] [--all]
    python scripts/translations.py extract --out DIR           # only the .pot files
    python scripts/translations.py show notebooks/02_self_attention [--todo] > todo.json
    python scripts/translations.py fill notebooks/02_self_attention done.json   # {msgid: msgstr}

`update` keeps every existing translation; a message whose English changed keeps its old
translation marked fuzzy (the build ignores fuzzy ones and the tests count them), a new message
is empty, and a message that is gone moves to the end of the file as obsolete (``#~``).
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SOURCE_LANGUAGE = "en"
LOCALE_DIR = "locale"
SITE_DOMAIN = "site"  # the catalog of the site's own strings (title, footer), not of a page
EDITIONS_KEY = "course_editions"


class TranslationError(RuntimeError):
    """A translation step that cannot go on; the message says why."""


# ----------------------------------------------------------------------------- configuration


def read_config(root: Path = ROOT) -> dict:
    return yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))


def editions(config: dict) -> dict[str, dict]:
    """``{language: {"path": "zh/", "label": "中文"}}`` from _config.yml, source language first."""
    found = ((config.get("sphinx") or {}).get("config") or {}).get(EDITIONS_KEY) or {}
    if SOURCE_LANGUAGE not in found:
        raise TranslationError(f"_config.yml: sphinx.config.{EDITIONS_KEY} lacks {SOURCE_LANGUAGE}")
    for language, edition in found.items():
        path = edition.get("path", "")
        if path and (path.startswith("/") or not path.endswith("/")):
            raise TranslationError(
                f"_config.yml: the path of edition {language} is a relative folder ending in "
                f"'/', not {path!r}"
            )
    return found


def translated_languages(root: Path = ROOT) -> list[str]:
    return [lang for lang in editions(read_config(root)) if lang != SOURCE_LANGUAGE]


def edition_config(root: Path, language: str) -> dict:
    """The _config.yml of one edition: the English one with its language and its place.

    Only what follows from the language changes: Sphinx's ``language``, the website's address
    (``html.baseurl`` + the edition's folder, which the learner edition links to) and the folder
    of the learner notebooks that the Colab buttons open (``repository.path_to_book``).
    ``local_extensions`` are made absolute, since Jupyter Book resolves them from the folder of
    the configuration file, which for an edition is a build folder.
    """
    config = copy.deepcopy(read_config(root))
    found = editions(config)
    if language not in found:
        raise TranslationError(
            f"no edition {language!r} in _config.yml (sphinx.config.{EDITIONS_KEY}: "
            f"{', '.join(found)})"
        )
    sphinx = config.setdefault("sphinx", {})
    for name, path in (sphinx.get("local_extensions") or {}).items():
        sphinx["local_extensions"][name] = str((root / path).resolve())
    if language == SOURCE_LANGUAGE:
        return config
    folder = found[language].get("path", "")
    sphinx.setdefault("config", {})["language"] = language
    html = config.setdefault("html", {})
    if html.get("baseurl"):
        html["baseurl"] = html["baseurl"].rstrip("/") + "/" + folder
    repository = config.setdefault("repository", {})
    book = (repository.get("path_to_book") or "").strip("/")
    repository["path_to_book"] = "/".join(p for p in (book, folder.strip("/")) if p)
    return config


# ----------------------------------------------------------------------------- building


def run_sphinx(
    root: Path,
    language: str,
    out: Path,
    *,
    builder: str = "html",
    work: Path | None = None,
    strict: bool = False,
    quiet: bool = False,
    overrides: dict | None = None,
) -> int:
    """Build one edition with Jupyter Book's own Sphinx entry point; return Sphinx's status.

    This is what ``jupyter-book build --config <edition config>`` does, with two differences
    the CLI cannot express: the output goes to ``out`` itself (not ``out/_build/html``), and the
    edition keeps its own doctrees in ``work`` (sharing them with the English build would mix
    the two languages' pages).
    """
    from jupyter_book.sphinx import build_sphinx

    out = Path(out).resolve()
    work = Path(work).resolve() if work else out.parent / f".{out.name}-work"
    work.mkdir(parents=True, exist_ok=True)
    path_config = work / "_config.yml"
    header = f"# Generated by scripts/translations.py from _config.yml: the {language} edition.\n"
    path_config.write_text(
        header + yaml.safe_dump(edition_config(root, language), allow_unicode=True),
        encoding="utf-8",
    )
    settings = {
        "external_toc_path": (root / "_toc.yml").as_posix(),
        "latex_individualpages": False,
    }
    if strict:
        settings["nitpicky"] = True
    settings.update(overrides or {})  # e.g. {"locale_dirs": [...]} to build from other catalogs
    result = build_sphinx(
        root,
        out,
        noconfig=True,
        path_config=str(path_config),
        confoverrides=settings,
        doctreedir=work / "doctrees",
        builder=builder,
        warningiserror=strict,
        keep_going=strict,
        quiet=quiet,
    )
    if isinstance(result, BaseException):
        return 2
    return int(result or 0)


def extract(root: Path, out: Path, *, quiet: bool = True) -> list[Path]:
    """Write the message catalogs (.pot) of the English sources to ``out``; return them."""
    out = Path(out)
    title = read_config(root).get("title", "")
    status = run_sphinx(
        root, SOURCE_LANGUAGE, out, builder="gettext", quiet=quiet, overrides={"project": title}
    )
    if status:
        raise TranslationError(f"extracting the messages failed (Sphinx exit status {status})")
    return sorted(out.rglob("*.pot"))


def update(root: Path, languages: list[str], pot_dir: Path, locale_dir: Path | None = None) -> dict:
    """Update (or create) every language's .po files from the .pot files of ``pot_dir``.

    sphinx-intl's catalog functions (babel) do the merge: a translation is kept while its
    message is unchanged; a changed message keeps its old translation marked fuzzy, with the
    old English beside it (``#| msgid``) so the translator sees what changed; a message that is
    gone is dropped (git keeps it). Messages with nothing to translate (only code, math, a
    reference or symbols: "`B`", "$W^O$", "★★") are filled with themselves. A catalog whose
    messages did not change is not rewritten.
    """
    from sphinx_intl import catalog as c

    locale_dir = Path(locale_dir or root / LOCALE_DIR)
    status = {"create": 0, "update": 0, "notchanged": 0}
    for pot_file in sorted(Path(pot_dir).rglob("*.pot")):
        domain = pot_file.relative_to(pot_dir).with_suffix("").as_posix()
        template = c.load_po(str(pot_file))
        for language in languages:
            po_file = locale_dir / language / "LC_MESSAGES" / f"{domain}.po"
            if po_file.exists():
                catalog = c.load_po(str(po_file))
                before = _entries(catalog)
                c.update_with_fuzzy(catalog, template)
                kind = "update"
            else:
                catalog, before, kind = template, None, "create"
                catalog.locale = language
            for message in catalog:
                if message.id and not has_prose(message.id):
                    if not message.string or message.fuzzy:
                        message.string = message.id
                        message.flags.discard("fuzzy")
                        message.previous_id = []
            if _entries(catalog) == before:
                status["notchanged"] += 1
                continue
            c.dump_po(str(po_file), catalog, width=76, ignore_obsolete=True)
            _add_previous_english(po_file, catalog)
            status[kind] += 1
    return status


def _add_previous_english(po_file: Path, catalog) -> None:
    """Write beside each fuzzy message its former English (``#| msgid``), as gettext does.

    babel's own include_previous wraps those lines into an invalid .po file, so polib writes
    the file (always polib, so the files keep one layout whoever last wrote them).
    """
    previous = {m.id: m.previous_id for m in catalog if m.id and m.fuzzy and m.previous_id}
    import polib

    po = polib.pofile(str(po_file), wrapwidth=76)
    for entry in po:
        before = previous.get(entry.msgid)
        if before:
            entry.previous_msgid = before if isinstance(before, str) else "".join(before)
    po.save()


def _entries(catalog) -> list:
    return [(m.id, m.string, sorted(m.flags), m.previous_id) for m in catalog if m.id]


_NOT_PROSE = re.compile(
    r"\{[^{}`]+\}`[^`]*`"  # a role: {ref}`label`, {cite}`key`
    r"|``.*?``|`[^`]*`"  # inline code
    r"|\$\$.*?\$\$|\$[^$]*\$"  # math
    r"|<https?://[^>]*>"  # an autolink
)


def has_prose(message: str) -> bool:
    """Whether a message has words to translate besides code, math, references and symbols."""
    return re.search(r"[A-Za-z]{2,}|[\u3400-\u9fff]", _NOT_PROSE.sub("", message)) is not None


def stale_catalogs(pot_dir: Path, locale_dir: Path, language: str) -> list[Path]:
    """The .po files of ``language`` whose page no longer exists (no .pot of that name)."""
    messages = locale_dir / language / "LC_MESSAGES"
    return sorted(
        po
        for po in messages.rglob("*.po")
        if not (pot_dir / po.relative_to(messages).with_suffix(".pot")).is_file()
    )


# ----------------------------------------------------------------------------- catalogs


@dataclass
class CatalogStatus:
    """How far one catalog is translated."""

    domain: str  # "notebooks/02_self_attention", "site"
    path: Path
    total: int
    translated: int
    fuzzy: list  # polib entries
    untranslated: list

    @property
    def complete(self) -> bool:
        return not self.fuzzy and not self.untranslated


def catalog_status(locale_dir: Path, language: str) -> dict[str, CatalogStatus]:
    """``{domain: CatalogStatus}`` of every .po file of ``language``."""
    import polib

    messages = Path(locale_dir) / language / "LC_MESSAGES"
    found = {}
    for path in sorted(messages.rglob("*.po")):
        po = polib.pofile(str(path), wrapwidth=0)
        entries = [e for e in po if not e.obsolete]
        fuzzy = [e for e in entries if "fuzzy" in e.flags]
        untranslated = [e for e in entries if not e.msgstr and "fuzzy" not in e.flags]
        domain = path.relative_to(messages).with_suffix("").as_posix()
        found[domain] = CatalogStatus(
            domain=domain,
            path=path,
            total=len(entries),
            translated=len(entries) - len(fuzzy) - len(untranslated),
            fuzzy=fuzzy,
            untranslated=untranslated,
        )
    return found


def regenerated_status(
    root: Path, language: str, work: Path
) -> tuple[dict[str, CatalogStatus], Path]:
    """The catalogs of ``language`` as ``make translations`` would leave them, built in ``work``.

    The .pot files are extracted from the current sources and the committed .po files are
    updated in a copy, so the repository is not written. Returns the status of every catalog and
    the folder of the .pot files.
    """
    pot_dir, locale_dir = work / "pot", work / "locale"
    extract(root, pot_dir)
    source = root / LOCALE_DIR / language
    if source.is_dir():
        shutil.copytree(source, locale_dir / language, ignore=shutil.ignore_patterns("*.mo"))
    update(root, [language], pot_dir, locale_dir)
    return catalog_status(locale_dir, language), pot_dir


class Catalogs:
    """The finished translations of one language: ``{domain: {msgid: msgstr}}``.

    Like Sphinx, it uses only translated, non-fuzzy entries; anything else stays English.
    """

    def __init__(self, root: Path, language: str, locale_dir: Path | None = None):
        import polib

        self.language = language
        self.messages: dict[str, dict[str, str]] = {}
        base = Path(locale_dir or root / LOCALE_DIR) / language / "LC_MESSAGES"
        for path in sorted(base.rglob("*.po")):
            domain = path.relative_to(base).with_suffix("").as_posix()
            self.messages[domain] = {
                e.msgid: e.msgstr
                for e in polib.pofile(str(path))
                if e.msgstr and not e.obsolete and "fuzzy" not in e.flags
            }

    def get(self, domain: str, text: str) -> str | None:
        """The translation of ``text`` (a message as Sphinx extracts it), or None."""
        return self.messages.get(domain, {}).get(message_id(text))

    def gettext(self, domain: str, text: str) -> str:
        return self.get(domain, text) or text

    def translator(self, domain: str) -> Callable[[str], str | None]:
        return lambda text: self.get(domain, text)


def message_id(text: str) -> str:
    """A node's text as Sphinx's gettext builder writes it: one line, stripped."""
    return text.replace("\n", " ").strip()


# ----------------------------------------------------------------------------- MyST sources

# Directives whose body is Markdown prose (and so holds messages); others are left alone.
PROSE_DIRECTIVES = {
    "admonition", "note", "seealso", "tip", "hint", "important", "attention", "caution",
    "warning", "danger", "error", "dropdown", "exercise", "exercise-start", "solution",
    "solution-start", "epigraph", "figure", "margin", "sidebar", "topic",
}  # fmt: skip


def translate_markdown(text: str, lookup: Callable[[str], str | None], md) -> str:
    """Put the translations of ``lookup`` into MyST Markdown ``text``, message by message.

    A message is what Sphinx extracts from a page: a paragraph, a heading, a list item's or a
    table cell's text, a directive's title; its English text is the Markdown between the block's
    markers, with line breaks as spaces. Each one found in ``lookup`` is replaced in place (on one
    line, after the block's own prefix: list marker, ``>`` or indentation); everything else
    (math blocks, code, labels, directive options, untranslated text) is kept byte for byte.
    ``md`` is the MyST markdown-it parser of the book (scripts/learner_edition.py makes it).
    """
    lines = text.splitlines(keepends=True)
    edits: list[tuple[int, int, str]] = []  # (start offset, end offset, replacement)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    cursor = 0
    for token in md.parse(text, {}):
        if token.map is None:
            continue
        first, last = token.map
        if token.type == "inline":
            translated = lookup(token.content)
            if translated is None:
                continue
            content_lines = token.content.split("\n")
            head = lines[first].find(content_lines[0], max(0, cursor - starts[first]))
            end_line = first + len(content_lines) - 1
            tail = lines[end_line].rfind(content_lines[-1]) if end_line < len(lines) else -1
            if head < 0 or tail < 0:
                continue  # not where the parser says: leave it (the build shows it in English)
            start = starts[first] + head
            end = starts[end_line] + tail + len(content_lines[-1])
            edits.append((start, end, translated))
            cursor = end
        elif token.type in ("fence", "colon_fence") and token.info.strip().startswith("{"):
            name, _, argument = token.info.strip()[1:].partition("}")
            argument = argument.strip()
            if argument and (translated := lookup(argument)) is not None:
                at = lines[first].find(argument)
                if at >= 0:
                    edits.append(
                        (starts[first] + at, starts[first] + at + len(argument), translated)
                    )
            if name.strip() in PROSE_DIRECTIVES and token.content.strip():
                body_first = first + 1
                body = "".join(lines[body_first : body_first + token.content.count("\n")])
                if body == token.content:  # a top-level directive: its body is these lines
                    new = translate_markdown(body, lookup, md)
                    if new != body:
                        begin = starts[body_first]
                        edits.append((begin, begin + len(body), new))
            cursor = starts[min(last, len(lines))]
    out = text
    for start, end, replacement in sorted(edits, reverse=True):
        out = out[:start] + replacement + out[end:]
    return out


# ----------------------------------------------------------------------------- one catalog


def catalog_path(root: Path, language: str, domain: str) -> Path:
    """locale/<language>/LC_MESSAGES/<domain>.po ("book/intro", "notebooks/02_self_attention")."""
    domain = re.sub(r"\.(po|pot|md|ipynb)$", "", domain.strip("/"))
    path = root / LOCALE_DIR / language / "LC_MESSAGES" / f"{domain}.po"
    if not path.is_file():
        raise TranslationError(f"no catalog {path.relative_to(root)} (run `make translations`)")
    return path


def show(root: Path, language: str, domain: str, todo: bool) -> list[dict]:
    """The entries of one catalog as dicts (msgid, msgstr, fuzzy, previous English)."""
    import polib

    entries = []
    for e in polib.pofile(str(catalog_path(root, language, domain))):
        fuzzy = "fuzzy" in e.flags
        if e.obsolete or (todo and e.msgstr and not fuzzy):
            continue
        entry = {"msgid": e.msgid, "msgstr": e.msgstr, "fuzzy": fuzzy}
        if fuzzy and e.previous_msgid:
            entry["previous_msgid"] = e.previous_msgid
        entries.append(entry)
    return entries


def fill(root: Path, language: str, domain: str, translations: dict[str, str]) -> int:
    """Write ``{msgid: msgstr}`` into one catalog (the fuzzy flag goes); return the count.

    Every msgid must be one of the catalog's messages, exactly as `show` prints it.
    """
    import polib

    path = catalog_path(root, language, domain)
    po = polib.pofile(str(path), wrapwidth=76)
    known = {e.msgid for e in po if not e.obsolete}
    unknown = [m for m in translations if m not in known]
    if unknown:
        raise TranslationError(
            f"{len(unknown)} msgid(s) are not messages of {path.name}, e.g. {unknown[0][:120]!r}"
        )
    for entry in po:
        if entry.msgid in translations and not entry.obsolete:
            entry.msgstr = translations[entry.msgid]
            if "fuzzy" in entry.flags:
                entry.flags.remove("fuzzy")
            entry.previous_msgid = None
    po.save()
    return len(translations)


# ----------------------------------------------------------------------------- command line


def _print_status(statuses: dict[str, CatalogStatus], show_all: bool) -> None:
    total = sum(s.total for s in statuses.values())
    done = sum(s.translated for s in statuses.values())
    width = max((len(d) for d in statuses), default=10)
    for domain, s in statuses.items():
        if show_all or not s.complete:
            print(
                f"{domain:<{width}}  {s.translated:4d}/{s.total:<4d} translated"
                f"  {len(s.fuzzy):4d} fuzzy  {len(s.untranslated):4d} untranslated"
            )
    print(f"{'all catalogs':<{width}}  {done:4d}/{total:<4d} translated ({len(statuses)} catalogs)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the book (holds _config.yml)")
    sub = parser.add_subparsers(dest="command", required=True)
    p_extract = sub.add_parser("extract", help="write the .pot files of the English sources")
    p_extract.add_argument("--out", type=Path, default=Path("_build/gettext"))
    p_update = sub.add_parser("update", help="regenerate the .pot files and update the .po files")
    p_update.add_argument("--language", action="append", help="default: every edition")
    p_update.add_argument("--pot", type=Path, default=Path("_build/gettext"))
    p_build = sub.add_parser("build", help="build the website of one edition")
    p_build.add_argument("language")
    p_build.add_argument("--out", type=Path, required=True)
    p_build.add_argument("--work", type=Path, help="doctrees and config (default: beside --out)")
    p_build.add_argument("--strict", action="store_true", help="-W -n --keep-going")
    p_status = sub.add_parser("status", help="how far each catalog is translated")
    p_status.add_argument("--language", action="append", help="default: every edition")
    p_status.add_argument("--all", action="store_true", help="list complete catalogs too")
    p_show = sub.add_parser("show", help="one catalog's messages as JSON (for translators)")
    p_show.add_argument("domain", help="the page: book/intro, notebooks/02_self_attention, site")
    p_show.add_argument("--language", default="zh_CN")
    p_show.add_argument("--todo", action="store_true", help="only untranslated and fuzzy ones")
    p_fill = sub.add_parser("fill", help="write translations from a JSON {msgid: msgstr} file")
    p_fill.add_argument("domain")
    p_fill.add_argument("json", type=Path)
    p_fill.add_argument("--language", default="zh_CN")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    started = time.perf_counter()
    try:
        if args.command == "extract":
            pots = extract(root, args.out)
            print(f"{len(pots)} catalogs (.pot) in {args.out}")
        elif args.command == "update":
            languages = args.language or translated_languages(root)
            if args.pot.exists():
                shutil.rmtree(args.pot)  # a page removed since the last run leaves no .pot
            pots = extract(root, args.pot)
            result = update(root, languages, args.pot)
            print(f"{len(pots)} catalogs from {args.pot}: {result}")
            for language in languages:
                for po in stale_catalogs(args.pot, root / LOCALE_DIR, language):
                    print(f"stale: {po} (its page is gone: delete it with `git rm`)")
                _print_status(catalog_status(root / LOCALE_DIR, language), show_all=False)
        elif args.command == "build":
            status = run_sphinx(root, args.language, args.out, work=args.work, strict=args.strict)
            if status:
                return status
            print(f"The {args.language} website is built in {args.out}")
        elif args.command == "status":
            for language in args.language or translated_languages(root):
                print(f"[{language}]")
                _print_status(catalog_status(root / LOCALE_DIR, language), show_all=args.all)
        elif args.command == "show":
            entries = show(root, args.language, args.domain, args.todo)
            print(json.dumps(entries, ensure_ascii=False, indent=1))
            return 0
        elif args.command == "fill":
            translations = json.loads(args.json.read_text(encoding="utf-8"))
            count = fill(root, args.language, args.domain, translations)
            path = catalog_path(root, args.language, args.domain)
            print(f"{count} translations written to {path.relative_to(root)}")
    except TranslationError as err:
        print(f"translations: {err}", file=sys.stderr)
        return 1
    print(f"({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
