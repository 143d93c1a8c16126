"""``digest init`` (digest/quickstart.py): the template, what it writes, and the real command."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import select
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from digest.config import Config, load_config
from digest.errors import ConfigError
from digest.quickstart import example_config, init_folder, render_config, source_from_spec
from tests.conftest import REPO, run_digest

NOW = dt.datetime(2025, 3, 14, 7, 30, tzinfo=dt.timezone.utc)


def test_the_shipped_example_is_the_init_template_rendered() -> None:
    shipped = (REPO / "config" / "digest.toml").read_text(encoding="utf-8")
    assert shipped == example_config(), (
        "config/digest.toml is not config/digest.toml.j2 rendered: edit the template, then run "
        ".venv/bin/python -m digest.quickstart > config/digest.toml"
    )
    config = load_config(REPO / "config" / "digest.toml")
    assert [s.name for s in config.sources] == ["inbox", "hf-daily", "cs.LG", "cs.CL", "cs.CV"]
    assert config.sources[-1].announce_types == ("new",)
    assert config.email.enabled is False and [r.address for r in config.email.recipients] == ["reader@example.org"]


@pytest.mark.parametrize("recipients", [(), ("me@example.org",)])
def test_every_section_of_the_schema_is_written_set_or_commented_out(recipients: tuple[str, ...]) -> None:
    text = render_config([], recipients)
    for f in dataclasses.fields(Config):
        if f.metadata.get("internal"):
            continue
        header = r"\[\[sources\]\]" if f.name == "sources" else rf"\[{f.name}\]"
        assert re.search(rf"^(# )?{header}", text, re.MULTILINE), f"[{f.name}] is missing from digest.toml.j2"
    assert re.search(r"^(# )?\[\[email\.recipients\]\]", text, re.MULTILINE)


def test_init_writes_a_commented_config_that_loads_and_an_inbox(tmp_path: Path) -> None:
    result = run_digest(tmp_path, "init", check_code=0)
    config = load_config(tmp_path / "digest.toml")
    assert (tmp_path / "inbox").is_dir()
    assert [(s.name, s.kind, s.path) for s in config.sources] == [("inbox", "snapshots", tmp_path / "inbox")]
    assert config.store.path == tmp_path / "var" / "digest.sqlite3"
    assert config.archive.dir == tmp_path / "archive"
    assert config.email.enabled is False and config.email.recipients == ()
    text = (tmp_path / "digest.toml").read_text(encoding="utf-8")
    assert "# [email]\n# enabled = false\n" in text  # the optional sections are there, commented out
    assert '# url = "https://huggingface.co/api/daily_papers"' in text
    assert '# url = "https://rss.arxiv.org/rss/cs.LG"' in text
    assert result.stdout.splitlines() == [
        "Wrote digest.toml (sources: inbox) and made inbox/.",
        "Next:",
        "  cp LISTING.txt inbox/   # a paper-listing page saved as text",
        "  digest run              # read the sources, group the new papers, write archive/",
        "  digest site             # the archive as an HTML site: open site/index.html",
    ]
    assert result.stderr == ""


def test_init_sources_and_email_are_set_and_the_smtp_keys_left_to_fill(tmp_path: Path) -> None:
    result = run_digest(
        tmp_path, "init", "new-digest", "--source", "arxiv:cs.LG", "--source", "hf", "--source",
        "https://example.org/papers/feed.xml", "--source", "arxiv:math.ST", "--email", "me@example.org", check_code=0,
    )
    config = load_config(tmp_path / "new-digest" / "digest.toml")
    assert [(s.name, s.kind, s.url, s.announce_types) for s in config.sources[1:]] == [
        ("cs.LG", "feed", "https://rss.arxiv.org/rss/cs.LG", ("new", "cross")),
        ("hf-daily", "hf-daily-papers", "https://huggingface.co/api/daily_papers", ("new", "cross")),
        ("example.org", "feed", "https://example.org/papers/feed.xml", ("new", "cross")),
        ("math.ST", "feed", "https://rss.arxiv.org/rss/math.ST", ("new", "cross")),
    ]
    assert config.email.enabled is True
    assert [r.address for r in config.email.recipients] == ["me@example.org"]
    text = (tmp_path / "new-digest" / "digest.toml").read_text(encoding="utf-8")
    for key in ("host", "port", "security", "username", "password_env", "from"):
        assert re.search(rf"^# {key} = ", text, re.MULTILINE), key  # a placeholder the user fills in
    assert "# name = \"hf-daily\"" not in text and "# name = \"cs.LG\"" not in text  # no example of a kind already set
    lines = result.stdout.splitlines()
    assert lines[0] == "Wrote new-digest/digest.toml (sources: inbox, cs.LG, hf-daily, example.org, math.ST) and made new-digest/inbox/."
    assert lines[1].startswith("Email goes to me@example.org: fill in your SMTP server in [email]")
    assert lines[2] == "Next, in new-digest:"


def test_two_feeds_from_one_host_get_two_names(tmp_path: Path) -> None:
    init_folder(tmp_path, sources=["https://example.org/a.xml", "https://example.org/b.xml"], now=NOW)
    assert [s.name for s in load_config(tmp_path / "digest.toml").sources] == ["inbox", "example.org", "example.org-2"]


def test_feed_text_cannot_break_out_of_its_toml_string(tmp_path: Path) -> None:
    url = 'https://example.org/feed?q="x"\\y#z'
    init_folder(tmp_path, sources=[url], now=NOW)
    assert load_config(tmp_path / "digest.toml").sources[1].url == url


def test_init_never_replaces_a_config_without_force(tmp_path: Path) -> None:
    (tmp_path / "digest.toml").write_text("# mine\n", encoding="utf-8")
    result = run_digest(tmp_path, "init", "--source", "hf", check_code=2)
    assert result.stderr.splitlines() == [
        f"error: {Path('.') / 'digest.toml'}: already exists, not replaced",
        "hint: pass --force to replace it (the old file is kept as digest.toml.bak)",
    ]
    assert (tmp_path / "digest.toml").read_text(encoding="utf-8") == "# mine\n"
    assert not (tmp_path / "inbox").exists()


def test_force_keeps_each_replaced_config(tmp_path: Path) -> None:
    (tmp_path / "digest.toml").write_text("# first\n", encoding="utf-8")
    result = run_digest(tmp_path, "init", "--force", check_code=0)
    assert "The replaced config is kept as digest.toml.bak." in result.stdout
    assert (tmp_path / "digest.toml.bak").read_text(encoding="utf-8") == "# first\n"
    second = (tmp_path / "digest.toml").read_text(encoding="utf-8")
    again = init_folder(tmp_path, sources=["hf"], force=True, now=NOW)
    assert again.backup == tmp_path / "digest.toml.20250314-073000.bak"
    assert again.backup.read_text(encoding="utf-8") == second
    assert (tmp_path / "digest.toml.bak").read_text(encoding="utf-8") == "# first\n"
    assert [s.name for s in load_config(tmp_path / "digest.toml").sources] == ["inbox", "hf-daily"]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--source", "arxiv:cs LG"], "error: --source 'arxiv:cs LG': 'cs LG' is not an arXiv category"),
        (["--source", "rss"], "error: --source 'rss': not arxiv:CATEGORY, hf, or an http(s) feed URL"),
        (["--source", "ftp://example.org/feed"], "error: --source 'ftp://example.org/feed': not arxiv:CATEGORY, hf, or an http(s) feed URL"),
        (["--source", "http://[::1/feed"], "error: --source 'http://[::1/feed': not arxiv:CATEGORY, hf, or an http(s) feed URL"),
        (["--source", "http://example.org:port/feed"], "error: --source 'http://example.org:port/feed': not arxiv:CATEGORY, hf, or an http(s) feed URL"),
        (["--email", "me at example.org"], "error: --email 'me at example.org': not an email address like reader@example.org"),
    ],
)
def test_a_bad_option_is_one_error_and_nothing_is_written(tmp_path: Path, args: list[str], error: str) -> None:
    result = run_digest(tmp_path, "init", *args, check_code=2)
    assert result.stderr.splitlines()[0] == error
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_inbox_that_is_a_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "inbox").write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match="inbox: exists and is not a folder"):
        init_folder(tmp_path, now=NOW)
    assert not (tmp_path / "digest.toml").exists()


def test_source_specs() -> None:
    assert source_from_spec("HF").kind == "hf-daily-papers"
    assert source_from_spec("arxiv:astro-ph.CO").url == "https://rss.arxiv.org/rss/astro-ph.CO"
    assert source_from_spec("https://rss.arxiv.org/rss/cs.CL").name == "cs.CL"
    assert source_from_spec("https://rss.arxiv.org/atom/cs.CL").name == "cs.CL"
    assert source_from_spec("https://example.org/rss/cs.CL").name == "example.org"


def test_several_arxiv_categories_are_one_source(tmp_path: Path) -> None:
    init_folder(tmp_path, sources=["arxiv:cs.LG+stat.ML"], now=NOW)
    (source,) = load_config(tmp_path / "digest.toml").sources[1:]
    assert (source.name, source.url) == ("cs.LG-stat.ML", "https://rss.arxiv.org/rss/cs.LG+stat.ML")
    assert 'announce_types = ["new", "cross"]' in (tmp_path / "digest.toml").read_text(encoding="utf-8")


def test_a_feed_on_an_ip_v6_host_gets_a_name_the_config_accepts(tmp_path: Path) -> None:
    init_folder(tmp_path, sources=["http://[::1]:8080/feed"], now=NOW)
    assert load_config(tmp_path / "digest.toml").sources[1].url == "http://[::1]:8080/feed"


def test_init_asks_at_a_terminal_until_the_answers_are_valid(tmp_path: Path) -> None:
    import pty

    main, secondary = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "DIGEST_CONFIG"}
    process = subprocess.Popen(
        [sys.executable, "-m", "digest", "init"], cwd=tmp_path, stdin=secondary, stdout=secondary, stderr=secondary, env=env
    )
    os.close(secondary)
    try:
        screen = _read_until(main, "Sources (blank: the inbox alone): ")
        assert "arxiv:CATEGORY (e.g. arxiv:cs.LG), hf (Hugging Face daily papers), or a feed URL" in screen
        os.write(main, b"arxiv:cs.LG, nonsense\n")
        screen = _read_until(main, "Sources (blank: the inbox alone): ")
        assert "--source 'nonsense': not arxiv:CATEGORY, hf, or an http(s) feed URL" in screen
        os.write(main, b"arxiv:cs.LG hf\n")
        _read_until(main, "Email each digest to (blank: no email): ")
        os.write(main, b"me@example.org\n")
        screen = _read_until(main, "digest site")
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
        os.close(main)
    assert "Wrote digest.toml (sources: inbox, cs.LG, hf-daily) and made inbox/." in screen
    config = load_config(tmp_path / "digest.toml")
    assert [s.name for s in config.sources] == ["inbox", "cs.LG", "hf-daily"]
    assert [r.address for r in config.email.recipients] == ["me@example.org"]


def _read_until(fd: int, text: str, timeout: float = 30.0) -> str:
    """What a terminal shows until ``text`` appears (AssertionError after ``timeout`` seconds)."""
    seen = b""
    deadline = dt.datetime.now() + dt.timedelta(seconds=timeout)
    while text.encode() not in seen:
        left = (deadline - dt.datetime.now()).total_seconds()
        assert left > 0, f"{text!r} never appeared; the terminal showed {seen.decode(errors='replace')!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the program ended and closed the terminal
                chunk = b""
            assert chunk, f"{text!r} never appeared; the terminal showed {seen.decode(errors='replace')!r}"
            seen += chunk
    return seen.decode(errors="replace")


def test_init_output_parses_as_toml_for_every_option_mix(tmp_path: Path) -> None:
    for n, (sources, emails) in enumerate([((), ()), (("hf",), ()), ((), ("a@example.org", "b@example.org")), (("arxiv:cs.AI", "hf"), ("a@example.org",))]):
        folder = tmp_path / str(n)
        init_folder(folder, sources=sources, emails=emails, now=NOW)
        data = tomllib.loads((folder / "digest.toml").read_text(encoding="utf-8"))
        assert len(data["sources"]) == 1 + len(sources)
        assert [r["address"] for r in data.get("email", {}).get("recipients", [])] == list(emails)
