"""domain.research: item normalisation, de-duplication and ranking (pure functions)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from clients.research import normalize_query
from domain.research import (
    InvalidResearchItem,
    ResearchItem,
    ResearchResult,
    SourceOutcome,
    html_to_text,
    markdown_to_text,
    normalize_url,
    plain_text,
    rank_items,
)


def item(title: str, url: str, *, source: str = "devto", summary: str = "", score: float = 0.5,
         published_at: str | None = "2026-01-01T00:00:00Z", tags: tuple[str, ...] = ()) -> ResearchItem:
    return ResearchItem.create(source=source, title=title, url=url, summary=summary, score=score,
                               published_at=published_at, tags=tags)


def test_create_normalises_raw_values() -> None:
    created = ResearchItem.create(
        source="stackoverflow", title="  Don&#39;t   block &amp; wait ", url="https://stackoverflow.com/q/1",
        summary="  Rc<RefCell<T>>   and a &amp; b\n", score=7,
        published_at=1380313860, tags=["Python", "python", " AsyncIO "],
    )
    assert created.title == "Don't block & wait"
    assert created.summary == "Rc<RefCell<T>> and a &amp; b"  # plain text stays what the author wrote
    assert created.score == 1.0  # clamped into 0..1
    assert created.published_at == "2013-09-27T20:31:00Z"
    assert created.tags == ["python", "asyncio"]


@pytest.mark.parametrize("url", ["javascript:alert(1)", "/relative/path", "ftp://host/file", "", None,
                                 "https://", "https://exa mple.com/x", "data:text/html,hi"])
def test_only_absolute_http_urls_are_accepted(url: str | None) -> None:
    with pytest.raises(InvalidResearchItem):
        ResearchItem.create(source="docs", title="t", url=url)


def test_missing_title_and_unknown_source_are_rejected() -> None:
    with pytest.raises(InvalidResearchItem, match="missing title"):
        ResearchItem.create(source="docs", title="   ", url="https://x.org")
    with pytest.raises(InvalidResearchItem, match="unknown source"):
        ResearchItem.create(source="reddit", title="t", url="https://x.org")


def test_round_trip_and_validation_of_dicts() -> None:
    original = item("Title", "https://dev.to/a/b", tags=("react",))
    assert ResearchItem.from_dict(original.to_dict()) == original
    decoded = item("Use &amp;lt; for <", "https://dev.to/a/c")
    assert decoded.title == "Use &lt; for <"
    assert ResearchItem.from_dict(decoded.to_dict()) == decoded  # stored titles are not decoded twice
    result = ResearchResult(items=[original], outcomes={"devto": SourceOutcome("ok", None, 1, 12)})
    assert ResearchResult.from_dict(result.to_dict()) == result
    with pytest.raises(InvalidResearchItem):
        ResearchItem.from_dict({**original.to_dict(), "url": "javascript:x"})
    with pytest.raises(ValueError, match="unknown research outcome status"):
        SourceOutcome.from_dict({"status": "fine"})


def test_plain_text_trims_at_a_word_boundary() -> None:
    text = plain_text("word " * 200, limit=50)
    assert len(text) <= 50 and text.endswith("…") and not text.endswith(" …")
    assert plain_text(None) == ""


def test_html_and_markdown_to_text() -> None:
    html = "<p>Use <code>await</code>&nbsp;here &lt;T&gt;.</p><script>alert(1)</script><ul><li>one</li></ul>"
    assert html_to_text(html) == "Use await here <T>. one"
    assert markdown_to_text("<!-- template: describe the bug -->\nIt `Vec<T>` breaks <!-- unterminated") == (
        "It `Vec<T>` breaks"
    )


@pytest.mark.parametrize(("a", "b"), [
    ("https://www.github.com/facebook/react/", "https://github.com/facebook/react"),
    ("http://dev.to/x/y?utm_source=feed&utm_medium=rss", "https://dev.to/x/y"),
    ("https://developer.mozilla.org/en-US/docs/Web#section", "https://developer.mozilla.org/en-US/docs/Web"),
    ("https://m.youtube.com/watch?v=abc&ref=share", "https://www.youtube.com/watch?v=abc"),
])
def test_normalize_url_identifies_the_same_page(a: str, b: str) -> None:
    assert normalize_url(a) == normalize_url(b)


def test_normalize_url_keeps_meaningful_query() -> None:
    assert normalize_url("https://www.youtube.com/watch?v=abc") != normalize_url("https://www.youtube.com/watch?v=xyz")


def test_rank_dedups_keeping_the_most_relevant_copy() -> None:
    weak = item("Something else", "https://github.com/facebook/react/", source="github", score=0.1)
    strong = item("React hooks in depth", "https://www.github.com/facebook/react", source="github", score=0.9)
    other = item("CSS grid", "https://dev.to/css/grid", score=0.9)

    ranked = rank_items("react hooks", [weak, other, strong])

    assert ranked == [strong, other]


def test_rank_orders_by_term_overlap_then_source_score_then_recency() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    in_title = item("Postgres index types", "https://a.org/1", score=0.2)
    in_summary = item("Performance notes", "https://a.org/2", summary="btree index on postgres tables",
                      score=0.2)
    unrelated = item("Cooking pasta", "https://a.org/3", score=1.0)
    old_twin = item("Postgres index types (2015)", "https://a.org/4", score=0.2,
                    published_at="2015-01-01T00:00:00Z")

    ranked = rank_items("PostgreSQL indexes postgres", [unrelated, old_twin, in_summary, in_title], now=now)

    assert [r.url for r in ranked] == ["https://a.org/1", "https://a.org/4", "https://a.org/2", "https://a.org/3"]


def test_rank_is_deterministic_without_a_clock() -> None:
    items = [item(f"react hooks {i}", f"https://dev.to/{i}", score=0.5) for i in range(5)]
    assert rank_items("react hooks", items) == rank_items("react hooks", list(items)) == items


def test_tags_count_toward_relevance() -> None:
    tagged = item("A guide", "https://a.org/t", tags=("docker", "networking"), score=0.3)
    untagged = item("A guide", "https://a.org/u", score=0.3)
    assert rank_items("docker networking", [untagged, tagged])[0] is tagged


@pytest.mark.parametrize(("raw", "key"), [
    ("  Python   AsyncIO! ", "python asyncio"),
    ("C++, templates", "c++ templates"),
    ("(React) hooks?", "react hooks"),
    ("node.js streams.", "node.js streams"),
    ("C# LINQ", "c# linq"),
])
def test_normalize_query(raw: str, key: str) -> None:
    assert normalize_query(raw) == key
