"""Integration tests: the real ``digest`` command in a temporary folder."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import FIXTURES, REPLAY, seed
from digest.cli import main
from digest.store import SeenStore

Cli = Callable[..., subprocess.CompletedProcess[str]]


def test_replaying_the_seeds_reports_exactly_the_new_papers(write_config: Callable[..., Path], digest_cli: Cli, tmp_path: Path) -> None:
    write_config()
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
        f"error: {path}: email.bogus: unknown key (known keys here: connections, enabled, from, host, max_attempts, max_per_topic, password_env, port, rate_limit, recipients, security, send_empty, timeout, unsubscribe, username)",
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
    for command in ([], ["run"], ["preview"], ["status"], ["topics"], ["topics", "eval"], ["topics", "add-example"], ["schedule"], ["site"], ["backup"]):
        result = digest_cli(*command, "--help", check_code=0)
        assert "Usage:" in result.stdout
        assert len(result.stdout.splitlines()) > 3


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
