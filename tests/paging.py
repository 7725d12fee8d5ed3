"""Test helpers for the lists paged by key (app/paging.py): read a page's links, walk a list both ways."""
from __future__ import annotations

import html as html_lib
import re

_LINK = r'<a href="([^"]+)" class="page-{kind}"'


def page_link(page: str, kind: str) -> str | None:
    """The URL of the page's "next", "prev" or "first" link, or None when it has none."""
    found = re.search(_LINK.format(kind=kind), page)
    return html_lib.unescape(found.group(1)) if found else None


def count_text(page: str) -> str:
    """What the pager says about the rows that match: "32 in all", "more than 10,000 in all"."""
    found = re.search(r'<span class="page-count">([^<]+)</span>', page)
    assert found, "the page has no pager"
    return found.group(1)


def walk(client, url: str, row_pattern: str) -> tuple[list[str], list[str], list[str]]:
    """Follow Next from `url` to the last page, then Previous back to the first. Returns the rows (the first
    group of `row_pattern` in each page, in page order) forwards, backwards (re-ordered as shown), and every
    URL visited."""
    forwards, pages, urls = [], [], []
    while url:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        text = response.get_data(as_text=True)
        urls.append(url)
        rows = re.findall(row_pattern, text)
        pages.append(rows)
        forwards += rows
        url = page_link(text, "next")
    backwards_pages, url = [], page_link(text, "prev")
    while url:
        text = client.get(url).get_data(as_text=True)
        urls.append(url)
        backwards_pages.insert(0, re.findall(row_pattern, text))
        url = page_link(text, "prev")
    backwards = [row for rows in backwards_pages for row in rows] + pages[-1]
    return forwards, backwards, urls
