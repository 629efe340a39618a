"""Phones and tablets can open the chapter list and the page contents (pydata-sphinx-theme#2451).

Below 960 px both sidebars live in dialogs opened by the buttons of the article header. With
pydata-sphinx-theme 0.17 those buttons did nothing; book/assets/site/course.js forwards them to
the buttons the theme wires. Each test opens one dialog in a real Chromium and looks at its links.
Screenshots of chapter 02 at 390 px with each dialog open go to _build/screenshots/.
"""

from __future__ import annotations

import pytest

CHAPTER = "notebooks/02_self_attention"
WIDTHS = [390, 768]  # a phone, a tablet in portrait


def _visible_button(page, kind: str):
    buttons = page.locator(f"button.{kind}")
    visible = [buttons.nth(i) for i in range(buttons.count()) if buttons.nth(i).is_visible()]
    assert visible, f"no visible .{kind} button at this width"
    return visible[0]


def _visible_links(dialog) -> list[str]:
    links = dialog.locator("a.reference")
    return [
        links.nth(i).inner_text().strip() for i in range(links.count()) if links.nth(i).is_visible()
    ]


@pytest.mark.parametrize("width", WIDTHS)
def test_chapter_list_opens_on_narrow_screens(open_page, screenshot_dir, width):
    page = open_page(CHAPTER, width=width, height=844)
    dialog = page.locator("#pst-primary-sidebar-modal")
    assert not dialog.evaluate("d => d.open"), "the chapter list is open before any click"
    _visible_button(page, "primary-toggle").click()
    page.wait_for_function("() => document.querySelector('#pst-primary-sidebar-modal').open")
    links = _visible_links(dialog)
    chapters = [text for text in links if text[:1].isdigit()]
    assert len(chapters) >= 10, f"the chapter list shows {len(chapters)} chapters: {links}"
    assert "2. Scaled dot-product self-attention" in chapters, chapters
    page.screenshot(path=str(screenshot_dir / f"02_self_attention-{width}px-chapters-open.png"))
    page.keyboard.press("Escape")
    page.wait_for_function("() => !document.querySelector('#pst-primary-sidebar-modal').open")


@pytest.mark.parametrize("width", WIDTHS)
def test_page_contents_open_on_narrow_screens(open_page, screenshot_dir, width):
    page = open_page(CHAPTER, width=width, height=844)
    dialog = page.locator("#pst-secondary-sidebar-modal")
    _visible_button(page, "secondary-toggle").click()
    page.wait_for_function("() => document.querySelector('#pst-secondary-sidebar-modal').open")
    links = _visible_links(dialog)
    assert len(links) >= 5, f"the page contents show {links}"
    assert "Summary" in links and "Exercises" in links, links
    page.screenshot(path=str(screenshot_dir / f"02_self_attention-{width}px-contents-open.png"))
    dialog.get_by_role("link", name="Summary").click()  # a link jumps there and closes nothing
    page.wait_for_function("() => location.hash === '#summary'")


def test_wide_screen_button_hides_the_chapter_list(open_page):
    page = open_page(CHAPTER, width=1366)
    sidebar = page.locator("#pst-primary-sidebar")
    assert sidebar.is_visible()
    _visible_button(page, "primary-toggle").click()
    page.wait_for_timeout(400)  # the sidebar slides away
    assert not page.locator("#pst-primary-sidebar-modal").evaluate("d => d.open")
    assert page.evaluate(
        "() => document.querySelector('#pst-primary-sidebar').getBoundingClientRect().right <= 1"
        " || !document.querySelector('#pst-primary-sidebar').checkVisibility()"
    ), "the chapter list is still shown after the button hid it"
