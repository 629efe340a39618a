"""The one walk of _toc.yml that the tests share: its entries, and the pages they build."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def toc_entries(toc: dict | None = None) -> list[str]:
    """Every `file:` of _toc.yml (and the root), as written there, in order."""
    toc = toc if toc is not None else yaml.safe_load((ROOT / "_toc.yml").read_text("utf-8"))
    found = [toc["root"]]

    def walk(node) -> None:
        if isinstance(node, list):
            for child in node:
                walk(child)
        elif isinstance(node, dict):
            if "file" in node:
                found.append(node["file"])
            for key in ("parts", "chapters", "sections"):
                walk(node.get(key, []))

    walk(toc)
    return found


def toc_pages() -> list[tuple[str, bool]]:
    """(page path without suffix, built from a notebook?) for the root and every toc file."""
    stems = [re.sub(r"\.(md|ipynb)$", "", entry) for entry in toc_entries()]
    return [(stem, (ROOT / f"{stem}.ipynb").is_file()) for stem in stems]
