"""Canned research content for a handful of topics, plus a generic fallback derived from the query.

Each `<topic>.json` holds plain records per upstream (`github`, `github_issues`, `stackoverflow`,
`youtube`, `devto`, `mdn`, `readthedocs`); the stand-in routes render them in the real API shapes.
A query matches a topic when it names one of the topic's `specific` keywords; records are then
ordered by how many query words they mention, so different queries get different first hits.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONTENT_DIR = Path(__file__).parent
SECTIONS = ("github", "github_issues", "stackoverflow", "youtube", "devto", "mdn", "readthedocs")
_WORD = re.compile(r"[a-z0-9][a-z0-9+#.]*")


def words(text: str) -> list[str]:
    return [w.rstrip(".") for w in _WORD.findall(text.lower()) if w.rstrip(".")]


@dataclass(frozen=True)
class Topic:
    slug: str
    name: str
    keywords: tuple[str, ...]
    specific: tuple[str, ...]
    sections: dict[str, list[dict[str, Any]]]

    def matches(self, query: str) -> int:
        """How strongly `query` is about this topic: 0 unless a specific keyword is named."""
        padded = f" {' '.join(words(query))} "
        if not any(f" {k} " in padded for k in self.specific):
            return 0
        return sum(1 for k in self.keywords if f" {k} " in padded)


def _mentions(record: dict[str, Any], query_words: set[str]) -> int:
    text = " ".join(str(v) for v in record.values() if isinstance(v, str | list)).lower()
    return sum(1 for w in query_words if w in text)


class Library:
    def __init__(self, topics: list[Topic]) -> None:
        self.topics = topics

    @classmethod
    def load(cls, folder: Path = CONTENT_DIR) -> Library:
        topics = []
        for path in sorted(folder.glob("*.json")):
            data = json.loads(path.read_text(encoding="utf-8"))
            topics.append(
                Topic(
                    slug=path.stem,
                    name=data["topic"],
                    keywords=tuple(data["keywords"]),
                    specific=tuple(data["specific"]),
                    sections={name: list(data.get(name, [])) for name in SECTIONS},
                )
            )
        return cls(topics)

    def topic_for(self, query: str) -> Topic:
        scored = [(topic.matches(query), index, topic) for index, topic in enumerate(self.topics)]
        best = max(scored, key=lambda entry: (entry[0], -entry[1]), default=None)
        if best is None or best[0] == 0:
            return generic_topic(query)
        return best[2]

    def records(self, section: str, query: str) -> list[dict[str, Any]]:
        """The section's records for `query`, most mentioned query words first (stable)."""
        topic = self.topic_for(query)
        records = topic.sections.get(section) or generic_topic(query).sections.get(section, [])
        query_words = set(words(query))
        ranked = sorted(enumerate(records), key=lambda pair: (-_mentions(pair[1], query_words), pair[0]))
        return [record for _, record in ranked]


def _slug(query: str) -> str:
    return "-".join(words(query)) or "programming"


def _pseudo_id(seed: str, length: int = 11) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    digest = hashlib.sha256(seed.encode()).digest()
    return "".join(alphabet[b % len(alphabet)] for b in digest[:length])


def _number(seed: str, low: int, high: int) -> int:
    return low + int(hashlib.sha256(seed.encode()).hexdigest()[:8], 16) % (high - low)


def generic_topic(query: str) -> Topic:
    """Believable records about any query; links go to real listing pages for its words."""
    name = " ".join(words(query)) or "programming"
    title = name.title()
    slug = _slug(query)
    first = (words(query) or ["programming"])[0]
    sections: dict[str, list[dict[str, Any]]] = {
        "github": [
            {
                "full_name": f"topics/{slug}",
                "html_url": f"https://github.com/topics/{slug}",
                "description": f"Repositories tagged {name}: libraries, examples and tools.",
                "stars": _number(slug + "s", 800, 40000),
                "forks": _number(slug + "f", 50, 4000),
                "language": None,
                "topics": [slug, first],
                "created_at": "2019-03-02T10:00:00Z",
                "pushed_at": "2026-11-20T12:00:00Z",
                "homepage": "",
            },
        ],
        "github_issues": [],
        "stackoverflow": [
            {
                "question_id": _number(slug + "q1", 40_000_000, 79_000_000),
                "link": f"https://stackoverflow.com/questions/tagged/{first}",
                "title": f"What is the idiomatic way to get started with {name}?",
                "body_html": f"<p>I am new to <code>{name}</code>. What should I learn first, and which "
                "mistakes do beginners usually make?</p>",
                "tags": [first],
                "score": _number(slug + "qs", 5, 400),
                "answer_count": 3,
                "view_count": _number(slug + "qv", 1000, 90000),
                "creation_date": 1650000000,
                "last_activity_date": 1760000000,
                "accepted_answer": {
                    "answer_id": _number(slug + "a1", 40_000_000, 79_000_000),
                    "score": 42,
                    "body_html": f"<p>Start with the official documentation of {name}, build a "
                    "small project end to end, then read other people's code.</p>",
                },
            },
        ],
        "youtube": [
            {
                "video_id": _pseudo_id(slug + "v1"),
                "title": f"{title} in 100 Seconds",
                "description": f"A fast overview of {name}: what it is, why it matters and how to start.",
                "channel": "Fireship",
                "published_at": "2025-06-01T16:00:00Z",
            },
            {
                "video_id": _pseudo_id(slug + "v2"),
                "title": f"{title} Full Course for Beginners",
                "description": f"Learn {name} step by step with hands-on examples.",
                "channel": "freeCodeCamp.org",
                "published_at": "2024-09-12T14:00:00Z",
            },
        ],
        "devto": [
            {
                "id": _number(slug + "d1", 1_000_000, 3_000_000),
                "title": f"Getting started with {title}",
                "description": f"Everything I wish I had known when I started with {name}.",
                "user": "sandbox_writer",
                "slug": f"getting-started-with-{slug}",
                "tags": [first, "beginners"],
                "reactions": _number(slug + "dr", 5, 300),
                "comments": 4,
                "published_at": "2025-10-01T08:00:00Z",
                "reading_time": 5,
                "url": f"https://dev.to/t/{re.sub(r'[^a-z0-9]', '', first) or 'programming'}",
            },
        ],
        "mdn": [],
        "readthedocs": [],
    }
    return Topic(
        slug=f"generic:{slug}", name=title, keywords=tuple(words(query)), specific=(), sections=sections
    )
