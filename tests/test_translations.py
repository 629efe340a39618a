"""The Chinese edition's catalogs (locale/zh_CN): complete, faithful, and in the glossary's terms.

The catalogs are regenerated from the current sources into a temporary folder (as `make
translations` would update them, without writing into the repository), so an English change
that lacks its translation fails here and the failure names the page and the English paragraph.
The Chinese website itself is built by `make test` (-W -n) and checked in a browser by
tests/site/test_site_zh.py.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
LANGUAGE = "zh_CN"

# The catalogs that must be complete: 0 untranslated and 0 fuzzy messages after regenerating.
# Translators add their page here in the commit that completes it; once every catalog is done,
# the lead replaces the set by ALL (the bulk translation lands after the English rewrite).
MUST_BE_COMPLETE: set[str] | str = "all"  # every catalog (ALL below)
ALL = "all"


def _load(name: str):
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the class is made
        spec.loader.exec_module(module)
    return sys.modules[name]


le = _load("learner_edition")
tr = _load("translations")
ct = _load("check_translations")

CATALOGS = sorted((ROOT / tr.LOCALE_DIR / LANGUAGE / "LC_MESSAGES").rglob("*.po"))
CATALOG_IDS = [p.relative_to(ROOT / tr.LOCALE_DIR).as_posix() for p in CATALOGS]


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    """(status of every catalog, the .pot folder) after regenerating them from the sources."""
    return tr.regenerated_status(ROOT, LANGUAGE, tmp_path_factory.mktemp("catalogs"))


def _required(statuses) -> list[str]:
    return sorted(statuses) if MUST_BE_COMPLETE == ALL else sorted(MUST_BE_COMPLETE)


def _show(entries, limit: int = 8) -> str:
    lines = [f"    - {e.msgid[:160]!r}" for e in entries[:limit]]
    if len(entries) > limit:
        lines.append(f"    ... and {len(entries) - limit} more")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- (a) complete


def test_required_catalogs_are_fully_translated_after_regenerating(regenerated):
    statuses, _ = regenerated
    report = []
    for domain in _required(statuses):
        status = statuses.get(domain)
        if status is None:
            report.append(
                f"{domain}: no such page has messages (is the name in MUST_BE_COMPLETE right?)"
            )
            continue
        if status.untranslated:
            report.append(
                f"{domain}: {len(status.untranslated)} untranslated message(s):\n"
                + _show(status.untranslated)
            )
        if status.fuzzy:
            report.append(
                f"{domain}: {len(status.fuzzy)} fuzzy message(s) (the English changed; check and "
                "update the translation, then remove the fuzzy flag):\n" + _show(status.fuzzy)
            )
    assert not report, (
        "Translate these messages in locale/zh_CN/LC_MESSAGES/<page>.po "
        "(run `make translations` first):\n" + "\n".join(report)
    )


def test_every_page_has_its_catalog_and_no_catalog_is_stale(regenerated):
    """`make translations` ran after the last page was added, renamed or removed."""
    _, pot_dir = regenerated
    extracted = {p.relative_to(pot_dir).with_suffix("").as_posix() for p in pot_dir.rglob("*.pot")}
    assert extracted, "no message was extracted from the sources"
    messages = ROOT / tr.LOCALE_DIR / LANGUAGE / "LC_MESSAGES"
    committed = {p.relative_to(messages).with_suffix("").as_posix() for p in CATALOGS}
    missing = sorted(extracted - committed)
    stale = sorted(committed - extracted)
    assert not missing, f"pages without a catalog (run `make translations`): {missing}"
    assert not stale, f"catalogs of pages that are gone (`git rm` them): {stale}"


# ----------------------------------------------------------------------------- (b) faithful


@pytest.mark.parametrize("po", CATALOGS, ids=CATALOG_IDS)
def test_translations_keep_math_code_references_links_and_quotes(po):
    problems = ct.check_catalog(po, terms=None)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("msgid", "msgstr", "expected"),
    [
        ("Scale by $1/\\sqrt{d_k}$.", "按 $1/\\sqrt{d_k}$ 缩放。", []),
        ("Scale by $1/\\sqrt{d_k}$.", "按 $1/\\sqrt{d}$ 缩放。", ["math"]),
        ("Call `torch.softmax`.", "调用 torch.softmax。", ["inline code"]),
        ("See {ref}`why <sec-02-scale>`.", "见{ref}`原因 <sec-02-scale>`。", []),
        ("See {ref}`sec-02-scale`.", "见{ref}`原因 <sec-02-scal>`。", ["cross-reference"]),
        ("A {term}`mask`.", "一个{term}`掩码`。", ["cross-reference"]),
        ("A {term}`mask`.", "一个{term}`掩码 <mask>`。", []),
        ("[docs](https://pytorch.org/x)", "[文档](https://pytorch.org/y)", ["link"]),
        ("Fig. {number}", "图", ["placeholder"]),
        (
            "Q1 「Transformer 模型中的自注意力机制是什么？」",
            "Q1 「Transformer 模型的自注意力机制是什么？」",
            ["Chinese phrase"],
        ),
        ("One paragraph.", "一段\n两行。", ["line break"]),
    ],
)
def test_checker_finds_what_a_translation_lost(msgid, msgstr, expected):
    found = ct.problems(msgid, msgstr)
    assert len(found) >= len(expected), found
    for word in expected:
        assert any(word in problem for problem in found), (word, found)
    if not expected:
        assert found == []


# ----------------------------------------------------------------------------- (e) glossary


def test_glossary_gives_the_issue_core_terms():
    terms = ct.glossary_terms(ROOT)
    for english, chinese in {
        "self-attention": "自注意力",
        "multi-head attention": "多头注意力",
        "scaled dot-product attention": "缩放点积注意力",
        "mask": "掩码",
        "cross-attention": "交叉注意力",
        "positional encoding": "位置编码",
    }.items():
        assert terms.get(english) == chinese, f"glossary: {english} -> {terms.get(english)}"
    missing = [t for t in ct.CORE_TERMS if t.lower() not in terms]
    assert not missing, f"core terms without a Chinese name in {ct.GLOSSARY}: {missing}"


@pytest.mark.parametrize(
    "po", [p for p in CATALOGS if not p.match("*/book/glossary.po")], ids=lambda p: p.stem
)
def test_translations_use_the_glossary_terms(po):
    terms = ct.glossary_terms(ROOT)
    problems = [
        f"{po.name}: {e.msgid[:100]!r}: {p}"
        for e in _translated(po)
        for p in ct.term_problems(e.msgid, e.msgstr, terms)
    ]
    assert not problems, "\n".join(problems)


def _translated(po: Path):
    import polib

    return [
        e for e in polib.pofile(str(po)) if e.msgstr and not e.obsolete and "fuzzy" not in e.flags
    ]


# ----------------------------------------------------------------------------- the machinery


def test_edition_config_changes_only_what_follows_from_the_language():
    english = tr.read_config(ROOT)
    chinese = tr.edition_config(ROOT, LANGUAGE)
    folder = english["sphinx"]["config"]["course_editions"][LANGUAGE]["path"]
    assert chinese["sphinx"]["config"]["language"] == LANGUAGE
    assert chinese["html"]["baseurl"] == english["html"]["baseurl"].rstrip("/") + "/" + folder
    assert chinese["repository"]["path_to_book"] == folder.strip("/")
    for path in chinese["sphinx"]["local_extensions"].values():
        assert Path(path).is_absolute() and Path(path).is_dir()
    for key in ("title", "parse", "bibtex_bibfiles", "execute", "launch_buttons"):
        assert chinese[key] == english[key]


def test_message_ids_are_what_sphinx_extracts():
    """translate_markdown finds each message where MyST puts it: blocks, lists, tables, titles."""
    md = le.make_parser(le.load_config(ROOT).myst)
    text = (
        "# A title\n\n"
        "A paragraph on\ntwo lines with $x$.\n\n"
        "- an item\n- another {ref}`item <sec-x>`\n\n"
        "| Head | Other |\n|---|---|\n| cell | `code` |\n\n"
        ":::{admonition} Interview question Q1 · 中文标题\n:class: important\n\nBody text.\n:::\n\n"
        "$$\nx = 1\n$$\n"
    )
    messages = {
        "A title": "标题",
        "A paragraph on two lines with $x$.": "含 $x$ 的一段。",
        "an item": "一项",
        "another {ref}`item <sec-x>`": "另一{ref}`项 <sec-x>`",
        "Head": "表头",
        "cell": "单元格",
        "Interview question Q1 · 中文标题": "面试题 Q1 · 中文标题",
        "Body text.": "正文。",
    }
    out = tr.translate_markdown(text, lambda m: messages.get(tr.message_id(m)), md)
    assert out == (
        "# 标题\n\n"
        "含 $x$ 的一段。\n\n"
        "- 一项\n- 另一{ref}`项 <sec-x>`\n\n"
        "| 表头 | Other |\n|---|---|\n| 单元格 | `code` |\n\n"
        ":::{admonition} 面试题 Q1 · 中文标题\n:class: important\n\n正文。\n:::\n\n"
        "$$\nx = 1\n$$\n"
    )


def test_messages_with_nothing_to_translate_are_prefilled():
    for text in ("`B`", "$W^O$", "★★", "`q`, `k`, `v`", "{cite}`vaswani2017attention`"):
        assert not tr.has_prose(text), text
    for text in ("batch size", "see {ref}`x`", "`seq_len` of the key", "注意力"):
        assert tr.has_prose(text), text


def _learner_edition(out: Path, **kwargs) -> dict[str, nbformat.NotebookNode]:
    """Build the learner edition into ``out`` and read its notebooks, by stem."""
    written = le.build(ROOT, out, quiet=True, **kwargs)
    return {p.stem: nbformat.read(p, as_version=4) for p in written}


@pytest.fixture(scope="module")
def chinese_learner(tmp_path_factory) -> dict[str, nbformat.NotebookNode]:
    return _learner_edition(tmp_path_factory.mktemp("learner-zh"), language=LANGUAGE)


@pytest.fixture(scope="module")
def english_learner(tmp_path_factory) -> dict[str, nbformat.NotebookNode]:
    return _learner_edition(tmp_path_factory.mktemp("learner-en"))


def test_chinese_learner_edition_links_to_the_chinese_site(chinese_learner):
    base = tr.edition_config(ROOT, LANGUAGE)["html"]["baseurl"]
    for stem, nb in chinese_learner.items():
        meta = nb.metadata["learner_edition"]
        assert meta["language"] == LANGUAGE and meta["website"].startswith(base), (stem, meta)
        links = re.findall(r"\]\((https?://[^)\s]+)", "\n".join(_markdown(nb)))
        site_links = [u for u in links if u.startswith(tr.read_config(ROOT)["html"]["baseurl"])]
        assert site_links and all(u.startswith(base) for u in site_links), (stem, site_links[:3])
        assert "学习版" in nb.cells[0].source, f"{stem}: no Chinese learner note"


def test_chinese_learner_edition_keeps_code_and_outputs(chinese_learner, english_learner):
    for stem, nb in chinese_learner.items():
        code = [(c.source, c.get("outputs")) for c in nb.cells if c.cell_type == "code"]
        assert code == [
            (c.source, c.get("outputs"))
            for c in english_learner[stem].cells
            if c.cell_type == "code"
        ], stem


def test_chinese_learner_edition_takes_the_translated_messages(chinese_learner, english_learner):
    """Every translated message of a notebook's catalog whose English is in the English learner
    edition (solutions are not) is in its Chinese learner notebook."""
    catalogs = tr.Catalogs(ROOT, LANGUAGE)
    for stem, nb in chinese_learner.items():
        translated = catalogs.messages.get(f"notebooks/{stem}", {})
        text = "\n".join(_markdown(nb))
        english_text = " ".join(
            re.sub(r"[*_`$]", "", "\n".join(_markdown(english_learner[stem]))).split()
        )
        for msgid, msgstr in translated.items():
            if msgid == msgstr or not tr.has_prose(msgid) or "{" in msgstr:
                continue  # copied as is, or holds a role the learner edition rewrites
            if " ".join(re.sub(r"[*_`$]", "", msgid).split())[:40] not in english_text:
                continue  # a solution's text, removed from the learner edition
            plain = re.sub(r"[*_`$]", "", msgstr)[:20]
            assert plain in re.sub(r"[*_`$]", "", text), f"{stem}: {msgstr[:80]!r} missing"


def _markdown(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "markdown"]
