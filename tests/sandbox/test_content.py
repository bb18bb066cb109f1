"""sandbox.content: topic matching, query-ordered records, the generic fallback."""

from __future__ import annotations

import pytest

from sandbox.content import SECTIONS, Library, generic_topic

LIBRARY = Library.load()


@pytest.mark.parametrize(
    ("query", "slug"),
    [
        ("Python asyncio", "python-asyncio"),
        ("await in python", "python-asyncio"),
        ("React hooks useEffect cleanup", "react-hooks"),
        ("postgres partial index", "postgresql-indexing"),
        ("docker compose networking", "docker-networking"),
        ("the rust borrow checker", "rust-ownership"),
    ],
)
def test_queries_find_their_topic(query: str, slug: str) -> None:
    assert LIBRARY.topic_for(query).slug == slug


def test_a_generic_word_alone_does_not_pick_a_topic() -> None:
    # "python" appears in the asyncio topic, but "python decorators" is not about asyncio.
    assert LIBRARY.topic_for("python decorators").slug == "generic:python-decorators"


def test_every_topic_has_content_for_each_source() -> None:
    for topic in LIBRARY.topics:
        assert set(topic.sections) == set(SECTIONS)
        for section in ("github", "stackoverflow", "youtube", "devto"):
            assert topic.sections[section], (topic.slug, section)


def test_records_are_ordered_by_the_query() -> None:
    first = LIBRARY.records("stackoverflow", "postgres foreign keys")[0]
    assert first["title"] == "Postgres and Indexes on Foreign Keys and Primary Keys"
    first = LIBRARY.records("stackoverflow", "postgres sequential scan")[0]
    assert first["title"] == "Why does PostgreSQL perform sequential scan on indexed column?"


def test_generic_topic_is_deterministic_and_about_the_query() -> None:
    one, two = generic_topic("Kubernetes Operators"), generic_topic("kubernetes operators")
    assert one == two
    video_ids = [v["video_id"] for v in one.sections["youtube"]]
    assert all(len(v) == 11 for v in video_ids) and len(set(video_ids)) == 2
    for section in ("github", "stackoverflow", "youtube", "devto"):
        record = one.sections[section][0]
        assert "kubernetes" in " ".join(str(v) for v in record.values()).lower()
    assert generic_topic("zig comptime").sections["youtube"] != one.sections["youtube"]
