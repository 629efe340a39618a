"""The learner edition as learners see it, and the site's ways to get it.

One learner notebook (the one the chapter page's download button serves) is rendered with
nbconvert's JupyterLab template, the HTML JupyterLab itself would show, and loaded offline in
Chromium; MathJax comes from the built site. The site's download button and the instructor
guide's zip are checked to serve the learner edition. A screenshot goes to _build/screenshots/.
"""

from __future__ import annotations

import functools
import io
import re
import shutil
import threading
import urllib.request
import zipfile
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urljoin

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHAPTER = "notebooks/02_self_attention"
TIMEOUT_MS = 20_000
NOT_LOCAL = re.compile(r"^(?!https?://127\.0\.0\.1[:/])")
MYST_PATTERNS = [
    "{exercise",
    "{solution",
    "{admonition",
    ":::",
    "{ref}",
    "{doc}",
    "{cite",
    "{numref}",
]
# nbconvert's template configures MathJax 2; the site ships MathJax 3, which reads this instead.
MATHJAX3_CONFIG = r"""window.MathJax = {
  tex: {inlineMath: [["$", "$"], ["\\(", "\\)"]], displayMath: [["$$", "$$"], ["\\[", "\\]"]],
        processEscapes: true},
};"""


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        pass


@pytest.fixture(scope="module")
def learner_notebook(site_dir: Path) -> Path:
    """The notebook the chapter page's download button serves: it must be the learner edition."""
    path = site_dir / "_sources" / f"{CHAPTER}.ipynb"
    assert path.is_file(), f"{path} is missing: the site has no download for {CHAPTER}"
    return path


@pytest.fixture(scope="module")
def learner_url(learner_notebook: Path, site_dir: Path, tmp_path_factory) -> str:
    """Render the learner notebook with nbconvert (lab template) and serve it on 127.0.0.1."""
    from nbconvert import HTMLExporter

    folder = tmp_path_factory.mktemp("learner-html")
    shutil.copytree(site_dir / "_static" / "mathjax", folder / "mathjax")
    (folder / "require-stub.js").write_text("// require.js is only needed by widgets\n")
    exporter = HTMLExporter(
        template_name="lab", mathjax_url="mathjax/tex-chtml.js", require_js_url="require-stub.js"
    )
    html, _ = exporter.from_notebook_node(nbformat.read(learner_notebook, as_version=4))
    (folder / "index.html").write_text(html, encoding="utf-8")
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    server.shutdown()
    server.server_close()


@dataclass
class Rendered:
    """What the rendered learner notebook showed."""

    text: str = ""
    headings: list[str] = field(default_factory=list)
    quotes: list[dict] = field(default_factory=list)
    details: list[dict] = field(default_factory=list)
    opened_answer_visible: bool | None = None
    math: dict = field(default_factory=dict)
    blocked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


PAGE_JS = """() => {
  const cells = document.querySelector(".jp-Notebook");
  const quotes = Array.from(cells.querySelectorAll(".jp-RenderedMarkdown blockquote"));
  return {
    text: cells.innerText,
    headings: Array.from(cells.querySelectorAll("h1, h2, h3")).map((h) => h.textContent.trim()),
    quotes: quotes.map((q) => {
      const style = getComputedStyle(q);
      const title = q.querySelector("p strong");
      return {title: title ? title.textContent : "", border: parseFloat(style.borderLeftWidth),
              colour: style.borderLeftColor};
    }),
    details: Array.from(cells.querySelectorAll("details")).map((d) => ({
      open: d.open, summary: d.querySelector("summary").textContent.trim()})),
    math: {containers: cells.querySelectorAll("mjx-container").length,
           errors: cells.querySelectorAll("mjx-merror").length,
           raw: Array.from(cells.querySelectorAll(".jp-RenderedMarkdown"))
                  .some((m) => /\\$\\$|\\\\frac|\\\\sqrt/.test(m.innerText))},
  };
}"""


@pytest.fixture(scope="module")
def rendered(browser, learner_url, screenshot_dir) -> Rendered:
    seen = Rendered()
    context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
    context.set_default_timeout(TIMEOUT_MS)
    context.route(NOT_LOCAL, lambda r: (seen.blocked.append(r.request.url), r.abort()))
    context.add_init_script(MATHJAX3_CONFIG)
    page = context.new_page()
    page.on("console", lambda m: m.type == "error" and seen.errors.append(m.text))
    page.on("pageerror", lambda err: seen.errors.append(str(err)))
    try:
        page.goto(learner_url, wait_until="load")
        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
        page.evaluate("() => MathJax.startup.promise.then(() => true)")
        for key, value in page.evaluate(PAGE_JS).items():
            setattr(seen, key, value)
        page.screenshot(path=str(screenshot_dir / "learner-02_self_attention.png"), full_page=True)
        quotes = page.locator("blockquote", has_text="Interview question")
        if quotes.count():  # a viewport shot of the interview boxes, as a learner meets them
            quotes.first.scroll_into_view_if_needed()
            page.screenshot(path=str(screenshot_dir / "learner-02_self_attention-boxes.png"))
        answer = page.locator("details").first
        if answer.count():
            answer.locator("summary").click()
            seen.opened_answer_visible = answer.locator("p").first.is_visible()
    finally:
        context.close()
    return seen


def test_download_button_serves_the_learner_edition(learner_notebook, site_dir):
    page = (site_dir / f"{CHAPTER}.html").read_text(encoding="utf-8")
    assert f"_sources/{CHAPTER}.ipynb" in page, "the chapter page has no .ipynb download button"
    nb = nbformat.read(learner_notebook, as_version=4)
    assert "learner_edition" in nb.metadata, "the download button serves the source notebook"
    assert not any("{solution-start}" in c.source for c in nb.cells)


def test_instructor_guide_links_the_learner_zip(browser, base_url):
    context = browser.new_context()
    context.route(NOT_LOCAL, lambda r: r.abort())
    page = context.new_page()
    try:
        page.goto(urljoin(base_url, "book/instructors.html"))
        links = page.eval_on_selector_all(
            "a[href$='learner-notebooks.zip']", "links => links.map((a) => a.href)"
        )
        table = page.locator("table", has_text="Course total").count()
    finally:
        context.close()
    assert links, "the instructor guide has no link to the learner-edition zip"
    with urllib.request.urlopen(links[0]) as response:  # the local server
        assert response.status == 200
        archive = zipfile.ZipFile(io.BytesIO(response.read()))
    chapters = sorted(Path(n).name for n in archive.namelist())
    assert chapters == sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert table == 1, "the generated exercise table (with its course total) is missing"


def test_learner_notebook_loads_offline_without_errors(rendered):
    assert not rendered.blocked, f"the learner HTML asked the network for {rendered.blocked}"
    assert not rendered.errors, rendered.errors


def test_learner_notebook_shows_no_myst_syntax(rendered):
    for pattern in MYST_PATTERNS:
        assert pattern not in rendered.text, f"{pattern!r} is shown to the learner"


def test_learner_notebook_numbers_its_exercises_as_headings(rendered):
    exercises = [h.rstrip("¶") for h in rendered.headings if h.startswith("Exercise 2.")]
    assert exercises[:2] == [
        "Exercise 2.1 ★ Scaled dot-product attention with a mask",
        "Exercise 2.2 ★★ A masked softmax that never returns NaN",
    ], exercises


def test_learner_notebook_interview_boxes_are_styled_blocks_with_titles(rendered):
    boxes = [q for q in rendered.quotes if q["title"].startswith("Interview question")]
    assert [b["title"].split(" · ")[0] for b in boxes] == [
        "Interview question Q1",
        "Interview question Q14",
        "Interview question Q19",
    ]
    for box in boxes:
        assert box["border"] >= 2 and box["colour"] not in ("transparent", "rgba(0, 0, 0, 0)")


def test_learner_notebook_quiz_answers_are_collapsed_until_clicked(rendered):
    answers = [d for d in rendered.details if d["summary"] == "Answer"]
    assert len(answers) >= 3, rendered.details
    assert not any(d["open"] for d in rendered.details), "an answer is open on load"
    assert rendered.opened_answer_visible, "clicking 'Answer' does not show it"


def test_learner_notebook_math_is_typeset(rendered):
    assert rendered.math["containers"] > 20, rendered.math
    assert rendered.math["errors"] == 0, rendered.math
    assert not rendered.math["raw"], "raw TeX is shown in a markdown cell"


def test_learner_links_reach_existing_pages_and_anchors_of_the_site(site_dir):
    """Every website link of every learner notebook names a built page and an id on it."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    base = config["html"]["baseurl"].rstrip("/") + "/"
    pages: dict[str, str] = {}
    checked, broken = 0, []
    for path in sorted((site_dir / "_sources" / "notebooks").glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "markdown":
                continue
            for url in re.findall(r"\]\((https?://[^)\s]+)\)", cell.source):
                if not url.startswith(base):
                    continue
                page, _, anchor = url[len(base) :].partition("#")
                if page not in pages:
                    file = site_dir / page
                    pages[page] = file.read_text(encoding="utf-8") if file.is_file() else ""
                checked += 1
                if not pages[page] or (anchor and f'id="{anchor}"' not in pages[page]):
                    broken.append(f"{path.name}: {url}")
    assert checked > 50, f"only {checked} website links found in the learner edition"
    assert not broken, "links to no page or anchor of the site:\n" + "\n".join(broken)
