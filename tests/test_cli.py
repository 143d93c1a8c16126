"""Integration tests: the real ``digest`` command in a temporary folder."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from tests.conftest import FIXTURES, REPLAY, StoreBackend, seed
from tests.httpserver import Reply, TestServer
from digest.cli import main
from digest.store import SeenStore

Cli = Callable[..., subprocess.CompletedProcess[str]]
Replayed = tuple[Path, dict[str, dict[str, object]]]


def test_replaying_the_seeds_reports_exactly_the_new_papers(
    write_config: Callable[..., Path], digest_cli: Cli, tmp_path: Path, backend: StoreBackend, replayed: Replayed
) -> None:
    write_config(backend.toml)
    keys_by_day: dict[str, set[str]] = {}
    for prefix, day, expected in REPLAY:
        shutil.copy(seed(prefix), tmp_path / "inbox")
        result = digest_cli("run", "--date", day, "--json", check_code=0)
        summary = json.loads(result.stdout)
        assert summary["new"] == expected, day
        assert summary["date"] == day
        assert sum(len(g["papers"]) for g in summary["groups"]) == expected
        keys_by_day[day] = {p["key"] for g in summary["groups"] for p in g["papers"]}
        assert Path(summary["outputs"]["markdown"]) == tmp_path / "archive" / day[:4] / day[5:7] / f"{day}.md"
        assert summary["deliveries"]["archive"] == "done"
        assert summary["sources"] == [{"name": "inbox", "ok": True, "entries": summary["entries"], "error": None, "not_modified": False, "warnings": []}]
    all_keys = [k for keys in keys_by_day.values() for k in keys]
    assert len(all_keys) == len(set(all_keys)) == 315  # no paper in two digests
    before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "archive").rglob("*"))
    again = digest_cli("run", "--date", "2025-05-07", check_code=0)
    assert again.stdout == "Nothing new for 2025-05-07: the sources listed no new entries (snapshot files already read, feeds unchanged).\n"
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "archive").rglob("*")) == before  # no empty digest
    # Both engines file every paper alike: each day's page and each topic page is the one the
    # session's SQLite replay wrote (the feed, stamped with the run's clock, aside).
    pages = sorted(p.relative_to(tmp_path / "archive") for p in (tmp_path / "archive").rglob("*.md"))
    reference = replayed[0] / "archive"
    assert pages == sorted(p.relative_to(reference) for p in reference.rglob("*.md"))
    for page in pages:
        assert (tmp_path / "archive" / page).read_text(encoding="utf-8") == (reference / page).read_text(encoding="utf-8"), page


def test_a_renamed_copy_is_not_ingested_again(write_config: Callable[..., Path], digest_cli: Cli, tmp_path: Path) -> None:
    write_config()
    shutil.copy(FIXTURES / "snapshots" / "blank-lines.txt", tmp_path / "inbox" / "a.txt")
    assert json.loads(digest_cli("run", "--date", "2025-03-14", "--json", check_code=0).stdout)["new"] == 3
    shutil.copy(FIXTURES / "snapshots" / "blank-lines.txt", tmp_path / "inbox" / "renamed.txt")
    summary = json.loads(digest_cli("run", "--date", "2025-03-15", "--json", check_code=0).stdout)
    assert (summary["entries"], summary["new"]) == (0, 0)


def test_a_bad_file_is_one_error_line_and_the_others_go_in(write_config: Callable[..., Path], digest_cli: Cli, tmp_path: Path) -> None:
    write_config()
    shutil.copy(FIXTURES / "snapshots" / "latin1.txt", tmp_path / "inbox" / "a-bad.txt")
    shutil.copy(FIXTURES / "snapshots" / "blank-lines.txt", tmp_path / "inbox" / "b-good.txt")
    result = digest_cli("run", "--date", "2025-03-14", "--json")
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: source 'inbox': ") and "a-bad.txt: not UTF-8 text" in line
    summary = json.loads(result.stdout)
    assert summary["new"] == 3
    assert summary["sources"][0]["ok"] is False and "a-bad.txt" in summary["sources"][0]["error"]


def test_preview_changes_nothing_and_all_ignores_seen_marks(write_config: Callable[..., Path], digest_cli: Cli, tmp_path: Path) -> None:
    write_config()
    shutil.copy(FIXTURES / "snapshots" / "blank-lines.txt", tmp_path / "inbox")
    out = tmp_path / "preview"
    first = json.loads(digest_cli("preview", "--date", "2025-03-14", "--out", str(out), "--json", check_code=0).stdout)
    assert first["new"] == 3
    assert (out / "2025-03-14.html").is_file() and (out / "2025-03-14.md").is_file() and (out / "2025-03-14.txt").is_file()
    assert not (tmp_path / "var" / "digest.sqlite3").exists()  # nothing remembered
    assert not (tmp_path / "archive").exists()
    digest_cli("run", "--date", "2025-03-14", check_code=0)
    store_bytes = (tmp_path / "var" / "digest.sqlite3").read_bytes()
    nothing = digest_cli("preview", "--date", "2025-03-15", "--out", str(out), check_code=0)
    assert nothing.stdout.startswith("Nothing new for 2025-03-15: the sources listed no new entries")
    everything = json.loads(digest_cli("preview", "--all", "--out", str(out), "--json", check_code=0).stdout)
    assert everything["new"] == 3
    assert (tmp_path / "var" / "digest.sqlite3").read_bytes() == store_bytes


def test_preview_of_files_named_on_the_command_line(write_config: Callable[..., Path], digest_cli: Cli, tmp_path: Path) -> None:
    write_config()
    out = tmp_path / "p"
    result = digest_cli("preview", "--out", str(out), "--date", "2025-03-14", str(FIXTURES / "snapshots" / "missing-abstract.txt"), check_code=0)
    assert result.stdout.startswith("Preview for 2025-03-14: 3 new papers")
    assert str(out / "2025-03-14.html") in result.stdout


def test_config_errors_exit_2_with_one_line_per_problem(write_config: Callable[..., Path], digest_cli: Cli) -> None:
    path = write_config("[email]\nport = 'x'\nbogus = 1\n")
    result = digest_cli("run", check_code=2)
    assert result.stderr.splitlines() == [
        f"error: {path}: email.port: expected an integer, got a string 'x'",
        f"error: {path}: email.bogus: unknown key (known keys here: claim_seconds, connections, enabled, from, host, max_attempts, max_per_topic, password_env, port, rate_limit, recipients, security, send_empty, sent_by, timeout, unsubscribe, username)",
    ]
    assert "Traceback" not in result.stderr


def test_missing_config_is_exit_2_with_a_hint(digest_cli: Cli) -> None:
    result = digest_cli("run", "--config", "nope.toml", check_code=2)
    assert result.stderr.splitlines()[0] == "error: nope.toml: config file not found"


def test_a_bad_date_is_a_usage_error(write_config: Callable[..., Path], digest_cli: Cli) -> None:
    write_config()
    result = digest_cli("run", "--date", "14/03/2025", check_code=2)
    assert "is not a date in YYYY-MM-DD form" in result.stderr


def test_a_second_cycle_while_one_runs_exits_2(write_config: Callable[..., Path], digest_cli: Cli, tmp_path: Path) -> None:
    write_config()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from digest.store import SeenStore\n"
         "with SeenStore.open(Path('var/digest.sqlite3')) as s, s.lock():\n print('locked', flush=True); time.sleep(60)"],
        cwd=tmp_path, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        result = digest_cli("run", check_code=2)
        assert result.stderr.startswith(f"error: {tmp_path / 'var' / 'digest.sqlite3'}: another digest cycle is running on this store (pid {holder.pid})")
    finally:
        holder.kill()
        holder.wait()
    digest_cli("run", check_code=0)


def test_a_crash_between_grouping_and_commit_loses_nothing(
    write_config: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config()
    shutil.copy(FIXTURES / "snapshots" / "blank-lines.txt", tmp_path / "inbox")

    def crash(*args: object, **kwargs: object) -> None:
        raise SystemError("power cut")

    with monkeypatch.context() as patch:
        patch.setattr(SeenStore, "commit", crash)
        with pytest.raises(SystemError, match="power cut"):
            CliRunner().invoke(main, ["run", "--config", str(config), "--date", "2025-03-14"], catch_exceptions=False)
    db = sqlite3.connect(tmp_path / "var" / "digest.sqlite3")
    assert db.execute("SELECT COUNT(*) FROM papers").fetchone()[0] == 0
    db.close()
    result = CliRunner().invoke(main, ["run", "--config", str(config), "--date", "2025-03-14", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["new"] == 3


def test_every_command_has_help(digest_cli: Cli) -> None:
    commands = [name.split()[1:] for name, _ in _commands(main)]
    assert ["init"] in commands and ["serve"] in commands and ["subscribers", "bounce"] in commands
    for command in commands:
        result = digest_cli(*command, "--help", check_code=0)
        assert "Usage:" in result.stdout
        assert len(result.stdout.splitlines()) > 3


def _commands(command: click.Command, path: tuple[str, ...] = ("digest",)) -> Iterator[tuple[str, click.Command]]:
    yield " ".join(path), command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from _commands(sub, (*path, name))


def test_every_command_option_and_argument_is_described() -> None:
    """The CLI reference is made from these texts: a command or an option without one fails here."""
    missing = []
    for name, command in _commands(main):
        help_text = command.help or ""
        if len(help_text.strip()) < 10:
            missing.append(name)
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden and len((param.help or "").strip()) < 5:
                missing.append(f"{name} {param.opts[0]}")
            if isinstance(param, click.Argument) and param.human_readable_name not in help_text:
                missing.append(f"{name} {param.human_readable_name} (say what it is in the command's help)")
    assert missing == []
    assert len(list(_commands(main))) >= 9


def test_version_is_the_installed_package_version(digest_cli: Cli) -> None:
    import importlib.metadata

    import digest

    version = importlib.metadata.version("digest")
    assert version == digest.__version__
    result = digest_cli("--version", check_code=0)
    assert result.stdout == f"digest, version {version}\n"


def test_status_reports_store_last_digest_and_sources(write_config: Callable[..., Path], digest_cli: Cli, tmp_path: Path) -> None:
    write_config()
    shutil.copy(FIXTURES / "snapshots" / "blank-lines.txt", tmp_path / "inbox")
    digest_cli("run", "--date", "2025-03-14", check_code=0)
    info = json.loads(digest_cli("status", "--json", check_code=0).stdout)
    assert info["store"]["papers"] == 3
    assert info["last_digest"]["date"] == "2025-03-14" and info["last_digest"]["new"] == 3
    assert info["deliveries"]["pending"] == 0 and info["deliveries"]["sent"] == 1
    assert info["sources"][0]["name"] == "inbox" and info["sources"][0]["last_entries"] == 3
    text = digest_cli("status", check_code=0).stdout
    assert "last digest: 2025-03-14 (3 new papers)" in text


def test_preview_serve_answers_on_loopback(write_config: Callable[..., Path], tmp_path: Path) -> None:
    import socket
    import urllib.request

    write_config()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "digest", "preview", "--date", "2025-03-14", "--out", str(tmp_path / "p"),
         "--serve", str(port), str(FIXTURES / "snapshots" / "blank-lines.txt")],
        cwd=tmp_path, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert server.stdout is not None
        line = ""
        for _ in range(20):  # the summary's lines, then the URL
            line = server.stdout.readline()
            if line.startswith("Serving "):
                break
        url = line.split()[1]
        assert url == f"http://127.0.0.1:{port}/2025-03-14.html"
        with urllib.request.urlopen(url, timeout=10) as response:
            assert "Recurrent Memory Layers for Long Documents" in response.read().decode()
    finally:
        server.terminate()
        server.wait(10)


def test_preview_explain_says_why_for_a_known_paper(write_config: Callable[..., Path], digest_cli: Cli, tmp_path: Path) -> None:
    write_config()
    result = digest_cli("preview", "--explain", "--out", str(tmp_path / "p"), str(FIXTURES / "snapshots" / "blank-lines.txt"), check_code=0)
    lines = result.stdout.splitlines()
    at = lines.index("Four-Bit Weights Without Outliers")
    assert lines[at + 1].startswith("  -> Compression & quantization (runner-up: ")
    assert "quantiz" in lines[at + 2]


def test_nothing_new_says_the_entries_were_all_seen(write_config: Callable[..., Path], digest_cli: Cli, tmp_path: Path) -> None:
    write_config()
    shutil.copy(FIXTURES / "snapshots" / "blank-lines.txt", tmp_path / "inbox" / "a.txt")
    digest_cli("run", "--date", "2025-03-14", check_code=0)
    shutil.copy(FIXTURES / "snapshots" / "no-blank-lines.txt", tmp_path / "inbox" / "b.txt")  # same papers, other bytes
    result = digest_cli("run", "--date", "2025-03-15", check_code=0)
    assert result.stdout == "Nothing new for 2025-03-15: all 3 entries read were seen before.\n"


# --- preview with no config anywhere ---------------------------------------------------------------


def test_preview_of_a_file_with_no_config_uses_the_built_in_defaults(digest_cli: Cli, tmp_path: Path) -> None:
    temp = tmp_path / "temp"
    temp.mkdir()
    result = digest_cli("preview", "--date", "2025-03-14", str(seed("000")), env={"TMPDIR": str(temp)}, check_code=0)
    assert result.stderr == "note: no config file: previewing with the built-in defaults (the shipped topics)\n"
    lines = result.stdout.splitlines()
    assert lines[0] == "Preview for 2025-03-14: 112 new papers in 11 topics (112 entries read, 0 already seen, 0 duplicates merged)."
    html = Path(next(line for line in lines if line.strip().startswith("html: ")).split(": ", 1)[1])
    assert html.name == "2025-03-14.html" and html.parent.parent == temp  # a new temp folder
    assert "Inference &amp; serving" in html.read_text(encoding="utf-8")  # the shipped topics
    assert sorted(p.name for p in tmp_path.iterdir()) == ["temp"]  # no store, archive or config left behind
    assert sorted(p.name for p in html.parent.iterdir()) == ["2025-03-14.html", "2025-03-14.md", "2025-03-14.txt"]


def test_preview_of_a_feed_url_with_no_config(digest_cli: Cli, http_server: TestServer, tmp_path: Path) -> None:
    url = http_server.add("/rss/cs.LG", Reply(body=(FIXTURES / "feeds" / "arxiv_rss.xml").read_bytes(), headers={"Content-Type": "application/rss+xml"}))
    out = tmp_path / "out"
    summary = json.loads(digest_cli("preview", "--url", url, "--out", str(out), "--date", "2025-03-14", "--json", check_code=0).stdout)
    assert summary["sources"] == [{"name": "127.0.0.1", "ok": True, "entries": 3, "error": None, "not_modified": False, "warnings": []}]
    assert summary["new"] == 3  # the new and cross-listed announcements, not the replacements
    assert Path(summary["outputs"]["html"]) == out / "2025-03-14.html"
    assert "Attention Is Not All You Need for Tabular Data" in (out / "2025-03-14.md").read_text(encoding="utf-8")
    assert http_server.hits("/rss/cs.LG") == 1


def test_preview_url_replaces_the_configured_sources(write_config: Callable[..., Path], digest_cli: Cli, http_server: TestServer, tmp_path: Path) -> None:
    write_config()
    shutil.copy(FIXTURES / "snapshots" / "blank-lines.txt", tmp_path / "inbox")
    url = http_server.add("/feed", Reply(body=(FIXTURES / "feeds" / "arxiv_rss.xml").read_bytes()))
    result = digest_cli("preview", "--url", url, "--out", str(tmp_path / "p"), "--json", check_code=0)
    assert result.stderr == ""  # the config was found
    assert [s["name"] for s in json.loads(result.stdout)["sources"]] == ["127.0.0.1"]


def test_preview_of_a_failing_url_is_one_error_line_and_exit_1(digest_cli: Cli, http_server: TestServer, tmp_path: Path) -> None:
    url = http_server.add("/gone", Reply(status=404))
    result = digest_cli("preview", "--url", url, "--out", str(tmp_path / "p"), check_code=1)
    assert result.stderr.splitlines()[1] == f"error: source '127.0.0.1': {url}: HTTP 404 Not Found"


def test_preview_open_with_no_config_opens_the_html_in_the_browser(digest_cli: Cli, tmp_path: Path) -> None:
    browser = tmp_path / "browser"
    browser.write_text('#!/bin/sh\nprintf "%s\\n" "$1" >> "$(dirname "$0")/opened"\n', encoding="utf-8")
    browser.chmod(0o755)
    out = tmp_path / "out"
    digest_cli("preview", "--open", "--out", str(out), "--date", "2025-03-14", str(FIXTURES / "snapshots" / "blank-lines.txt"),
               env={"BROWSER": f"{browser} %s"}, check_code=0)
    assert (tmp_path / "opened").read_text(encoding="utf-8") == (out / "2025-03-14.html").resolve().as_uri() + "\n"


def test_preview_with_nothing_to_preview_and_no_config_says_what_to_do(digest_cli: Cli) -> None:
    result = digest_cli("preview", check_code=2)
    assert result.stderr.splitlines() == [
        "error: nothing to preview: no config file (--config, $DIGEST_CONFIG, ./digest.toml, ./config/digest.toml) "
        "and no snapshot FILE or --url given",
        "hint: digest preview LISTING.txt, digest preview --url FEED_URL, or `digest init` to write a config",
    ]


def test_run_with_no_config_points_to_init(digest_cli: Cli) -> None:
    result = digest_cli("run", check_code=2)
    assert result.stderr.splitlines()[-1] == "hint: run `digest init` to write a commented digest.toml here, or pass --config PATH"


@pytest.mark.parametrize("url", ["file:///etc/passwd", "http://[::1/feed", "http://127.0.0.1:99999/feed"])
def test_a_url_that_is_not_http_is_a_usage_error(digest_cli: Cli, url: str) -> None:
    result = digest_cli("preview", "--url", url, check_code=2)
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == f"Error: Invalid value for '--url': {url!r} is not an http(s) URL"


# --- shell completion (click's own) -------------------------------------------------------------------


def _completion_script(shell: str) -> str:
    digest = Path(sys.executable).parent / "digest"
    result = subprocess.run([str(digest)], env={**os.environ, "_DIGEST_COMPLETE": f"{shell}_source"}, capture_output=True, text=True, timeout=60, check=True)
    return result.stdout


@pytest.mark.parametrize(("words", "cword", "expected"), [("digest pre", 1, ["preview"]), ("digest topics e", 2, ["eval"]), ("digest i", 1, ["init"])])
def test_bash_completion_script_completes_subcommands(tmp_path: Path, words: str, cword: int, expected: list[str]) -> None:
    script = tmp_path / "digest.bash"
    script.write_text(_completion_script("bash"), encoding="utf-8")
    assert "complete -o nosort -F _digest_completion digest" in script.read_text(encoding="utf-8")
    command = f'source {script}; COMP_WORDS=({words}); COMP_CWORD={cword}; _digest_completion digest; printf "%s\\n" "${{COMPREPLY[@]}}"'
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(["bash", "--norc", "--noprofile", "-c", command], env=env, capture_output=True, text=True, timeout=60)
    assert result.stderr == ""
    assert result.stdout.split() == expected


@pytest.mark.parametrize(("shell", "mark"), [("zsh", "compdef _digest_completion digest"), ("fish", "complete --no-files --command digest")])
def test_zsh_and_fish_completion_scripts_are_produced(shell: str, mark: str) -> None:
    script = _completion_script(shell)
    assert mark in script and f"_DIGEST_COMPLETE={shell}_complete" in script
