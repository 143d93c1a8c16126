"""Time parse_feed on a synthetic arXiv listing (RSS and Atom) of N items; print items/s."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from digest.sources.entries import build_papers
from digest.sources.feed import ANNOUNCE_TYPES, check_body, parse_feed, read_entries

TYPES = ("new", "cross", "replace", "replace-cross")


def rss(n: int) -> bytes:
    """An arXiv-style RSS 2.0 listing of ``n`` items."""
    items = "".join(
        f"""<item><title>Paper number {i} on
  things &amp; stuff</title><link>https://arxiv.org/abs/2401.{i:05d}</link>
<description>arXiv:2401.{i:05d}v1 Announce Type: {TYPES[i % 4]} 
Abstract: We study problem {i} with &lt;RET&gt; tokens and 256*256 images. {"Lorem ipsum dolor sit amet. " * 30}</description>
<guid isPermaLink="false">oai:arXiv.org:2401.{i:05d}v1</guid><category>cs.LG</category>
<pubDate>Tue, 23 Jan 2024 00:00:00 -0500</pubDate><arxiv:announce_type>{TYPES[i % 4]}</arxiv:announce_type>
<dc:rights>http://creativecommons.org/licenses/by/4.0/</dc:rights><dc:creator>Ada Lovelace, Alan Turing, Grace Hopper</dc:creator></item>
"""
        for i in range(n)
    )
    return f"""<?xml version='1.0' encoding='UTF-8'?>
<rss xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom" version="2.0">
<channel><title>cs.LG updates on arXiv.org</title><link>http://rss.arxiv.org/rss/cs.LG</link>
<description>cs.LG updates</description>{items}</channel></rss>""".encode()


def atom(n: int) -> bytes:
    """An arXiv-style Atom listing of ``n`` entries."""
    entries = "".join(
        f"""<entry><id>oai:arXiv.org:2401.{i:05d}v1</id><title>Paper number {i} on things &amp; stuff</title>
<updated>2024-01-23T00:00:00-05:00</updated><link href="https://arxiv.org/abs/2401.{i:05d}" rel="alternate" type="text/html"/>
<summary>arXiv:2401.{i:05d}v1 Announce Type: {TYPES[i % 4]} 
Abstract: We study problem {i}. {"Lorem ipsum dolor sit amet. " * 30}</summary>
<category term="cs.LG" scheme="http://arxiv.org/schemas/atom"/><published>2024-01-23T00:00:00-05:00</published>
<arxiv:announce_type>{TYPES[i % 4]}</arxiv:announce_type><dc:creator>Ada Lovelace, Alan Turing</dc:creator></entry>
"""
        for i in range(n)
    )
    return f"""<?xml version='1.0' encoding='UTF-8'?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns:dc="http://purl.org/dc/elements/1.1/">
<id>http://rss.arxiv.org/atom/cs.LG</id><title>cs.LG updates on arXiv.org</title><updated>2024-01-23T00:00:00-05:00</updated>
{entries}</feed>""".encode()


def timed(label: str, n: int, run: Callable[[], object]) -> None:
    """Run once to warm up, then report the best of three."""
    run()
    best = min(_seconds(run) for _ in range(3))
    print(f"{label:<34} {n:>6} items  {best:7.3f} s  {n / best:9.0f} items/s")


def _seconds(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def main() -> None:
    """Print parse_feed throughput for RSS and Atom listings."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=10_000)
    n = parser.parse_args().n
    for label, body in (("arXiv RSS", rss(n)), ("arXiv Atom", atom(n))):
        timed(f"{label} (parse_feed)", n, lambda: parse_feed(body, source="b", announce_types=ANNOUNCE_TYPES))
        timed(f"{label} (feedparser only)", n, lambda: _feedparser_only(body))


def _feedparser_only(body: bytes) -> object:
    check_body(body, source="b")
    return build_papers(read_entries(body, source="b"), source="b", announce_types=ANNOUNCE_TYPES)


if __name__ == "__main__":
    main()
