"""``digest serve`` through real HTTP on 127.0.0.1: the real command as a child process, a real
aiosmtpd server for the mail, the real ``digest run`` between the steps."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from digest.tokens import Signer
from tests.conftest import FIXTURES, StoreBackend, run_digest
from tests.smtp_sink import Sink, free_port, smtp_server

SECRET = "web-test-secret-0123456789abcdef"


@dataclass
class Served:
    """A running ``digest serve`` and what it talks to."""

    base: str
    sink: Sink
    folder: Path
    config: Path
    process: subprocess.Popen[bytes]

    def cli(self, *args: str, check_code: int | None = 0) -> subprocess.CompletedProcess[str]:
        return run_digest(self.folder, *args, env={"DIGEST_SECRET": SECRET}, check_code=check_code)

    def subscriber(self, address: str) -> dict[str, object] | None:
        rows = json.loads(self.cli("subscribers", "list", "--json").stdout)
        return next((r for r in rows if r["address"] == address), None)

    def mails_to(self, address: str, count: int, timeout: float = 20) -> list[EmailMessage]:
        """Wait for ``count`` messages to ``address`` (the confirmation mail goes after the answer)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.sink.by_recipient().get(address, [])
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"{count} mail(s) to {address} never arrived: {self.sink.by_recipient().get(address, [])}")


def start(folder: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "DIGEST_CONFIG"} | {"DIGEST_SECRET": SECRET}
    process = subprocess.Popen(
        [sys.executable, "-m", "digest", "serve", "--config", str(folder / "digest.toml"), "--port", str(port)],
        cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/subscribe", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
        if process.poll() is not None:
            raise AssertionError(process.stderr.read().decode() if process.stderr else "digest serve exited")
    process.kill()
    raise AssertionError("digest serve did not answer within 30 s")


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Start ``digest serve`` with extra config (a [serve] table's keys); stopped after the test."""
    sinks: list[tuple[object, Served]] = []

    def make(
        serve_keys: str = "", recipients: str = "", store: str = "", title: str = '"Lab papers"'
    ) -> Served:
        sink = Sink()
        smtp = smtp_server(sink)
        smtp_port = smtp.__enter__()
        port = free_port()
        (tmp_path / "inbox").mkdir(exist_ok=True)
        (tmp_path / "digest.toml").write_text(
            '[[sources]]\nname = "inbox"\nkind = "snapshots"\npath = "inbox/"\n\n'
            f'[archive]\nsite_url = "http://127.0.0.1:{port}"\ntitle = {title}\n\n'
            f'[email]\nenabled = true\nhost = "127.0.0.1"\nport = {smtp_port}\nsecurity = "none"\n'
            'from = "Lab papers <papers@example.org>"\n\n'
            f"{recipients}\n[serve]\n{serve_keys}\n\n{store}",
            encoding="utf-8",
        )
        served = Served(f"http://127.0.0.1:{port}", sink, tmp_path, tmp_path / "digest.toml", start(tmp_path, port))
        sinks.append((smtp, served))
        return served

    yield make
    for smtp, served in sinks:
        served.process.terminate()
        served.process.wait(30)
        smtp.__exit__(None, None, None)  # type: ignore[attr-defined]


def form_csrf(client: httpx.Client, base: str) -> str:
    page = client.get(f"{base}/subscribe")
    assert page.status_code == 200
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None and client.cookies.get("digest_csrf") == found.group(1)
    return found.group(1)


def link(text: str, path: str) -> str:
    found = re.search(rf"(http://127\.0\.0\.1:\d+/{path}\?t=[A-Za-z0-9_-]+)", text)
    assert found is not None, text
    return found.group(1)


def plain(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def test_the_life_of_a_subscriber(serve: Callable[..., Served], backend: StoreBackend) -> None:
    """subscribe -> confirmation mail -> confirm -> digest with working links -> one-click -> nothing more;
    replayed and forged tokens change nothing.  On PostgreSQL too: what the web process commits,
    the run (another process) sees."""
    served = serve(recipients='[[email.recipients]]\naddress = "fixed@example.org"\n', store=backend.toml)
    base = served.base
    with httpx.Client() as client:
        csrf = form_csrf(client, base)
        answer = client.post(f"{base}/subscribe", data={"csrf": csrf, "address": "new@example.org", "topics": ["audio"]})
        assert answer.status_code == 200 and "Check your inbox" in answer.text
        (confirmation,) = served.mails_to("new@example.org", 1)
        assert confirmation["Subject"] == "Confirm your subscription to Lab papers"
        confirm = link(plain(confirmation), "confirm")
        assert "new%40example.org" not in confirm and "new@example.org" not in confirm
        assert served.subscriber("new@example.org")["status"] == "pending"  # type: ignore[index]

        page = client.get(confirm)  # what a mail scanner does: nothing changes
        assert page.status_code == 200 and "Yes, subscribe me" in page.text
        assert served.subscriber("new@example.org")["status"] == "pending"  # type: ignore[index]
        done = client.post(confirm)
        assert done.status_code == 200 and "You are subscribed" in done.text
        assert served.subscriber("new@example.org")["status"] == "active"  # type: ignore[index]

        shutil.copy(FIXTURES / "email" / "listing.txt", served.folder / "inbox")
        first = json.loads(served.cli("run", "--date", "2025-03-14", "--json").stdout)
        assert first["deliveries"]["email"] == {"sent": 2, "failed": 0, "pending": 0}
        (digest,) = served.mails_to("new@example.org", 2)[1:]
        assert digest["Subject"] == "Lab papers \u2014 Fri 14 Mar 2025: 2 new papers"  # the audio topic chosen on the form
        text = plain(digest)
        unsubscribe, preferences = link(text, "unsubscribe"), link(text, "preferences")
        html = digest.get_body(("html",))
        assert html is not None and unsubscribe in str(html.get_content()) and preferences in str(html.get_content())

        prefs_page = client.get(preferences)
        assert prefs_page.status_code == 200 and 'value="audio" checked' in prefs_page.text
        saved = client.post(preferences, data={"topics": ["audio", "inference"], "save": "1"})
        assert saved.status_code == 200 and "Saved." in saved.text
        assert served.subscriber("new@example.org")["topics"] == ["audio", "inference"]  # type: ignore[index]

        assert "Stop sending the digest to" in client.get(unsubscribe).text
        assert served.subscriber("new@example.org")["status"] == "active"  # type: ignore[index]
        one_click = client.post(
            unsubscribe, content=b"List-Unsubscribe=One-Click", headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert one_click.status_code == 200 and "You are unsubscribed" in one_click.text
        left = served.subscriber("new@example.org")
        assert left is not None and left["status"] == "unsubscribed" and left["source"] == "one-click"

        # Replays and forgeries change nothing.
        assert client.post(confirm).status_code == 400  # a used confirmation link
        assert served.subscriber("new@example.org")["status"] == "unsubscribed"  # type: ignore[index]
        forged = unsubscribe[:-5] + ("AAAAA" if not unsubscribe.endswith("AAAAA") else "BBBBB")
        refused = client.post(forged, content=b"List-Unsubscribe=One-Click")
        assert refused.status_code == 400 and "This link does not work" in refused.text
        assert client.post(preferences, data={"topics": ["vision"], "save": "1"}).status_code == 400  # not subscribed any more
        assert served.subscriber("new@example.org")["topics"] == ["audio", "inference"]  # type: ignore[index]

    (served.folder / "inbox" / "listing.txt").unlink()
    shutil.copy(FIXTURES / "snapshots" / "blank-lines.txt", served.folder / "inbox")
    second = json.loads(served.cli("run", "--date", "2025-03-15", "--json").stdout)
    assert second["new"] > 0 and second["deliveries"]["email"]["sent"] == 1  # the config's fixed reader only
    assert len(served.sink.by_recipient()["new@example.org"]) == 2  # the confirmation and the first digest
    assert len(served.sink.by_recipient()["fixed@example.org"]) == 2


def test_twenty_attempts_for_one_address_send_at_most_the_limit_and_every_answer_is_the_same(serve: Callable[..., Served]) -> None:
    served = serve("client_limit = 100\naddress_limit = 3\n")
    with httpx.Client() as client:
        csrf = form_csrf(client, served.base)
        answers = {
            client.post(f"{served.base}/subscribe", data={"csrf": csrf, "address": "victim@example.org"}).text for _ in range(20)
        }
        stranger = client.post(f"{served.base}/subscribe", data={"csrf": csrf, "address": "stranger@example.org"}).text
    assert len(answers) == 1  # the same page each time
    assert stranger == answers.pop().replace("victim@", "stranger@")  # known or not: the same answer
    served.mails_to("stranger@example.org", 1)
    time.sleep(0.5)  # any late confirmation mail would have arrived by now
    assert len(served.sink.by_recipient()["victim@example.org"]) == 3


def test_a_client_past_its_limit_gets_429_and_forwarded_addresses_are_believed_from_the_proxy(serve: Callable[..., Served]) -> None:
    served = serve("client_limit = 2\n")
    with httpx.Client() as client:
        csrf = form_csrf(client, served.base)

        def attempt(n: int, via: str) -> int:
            data = {"csrf": csrf, "address": f"r{n}@example.org"}
            return client.post(f"{served.base}/subscribe", data=data, headers={"X-Forwarded-For": via}).status_code

        assert [attempt(n, "203.0.113.5") for n in range(3)] == [200, 200, 429]
        assert attempt(9, "198.51.100.7") == 200  # another client behind the same proxy (127.0.0.1 is trusted)


def test_a_post_without_the_csrf_cookie_or_a_bad_address_sends_nothing(serve: Callable[..., Served]) -> None:
    served = serve()
    forged = httpx.post(f"{served.base}/subscribe", data={"csrf": "guess", "address": "x@example.org"})
    assert forged.status_code == 403
    with httpx.Client() as client:
        csrf = form_csrf(client, served.base)
        bad = client.post(f"{served.base}/subscribe", data={"csrf": csrf, "address": "not an address"})
        assert bad.status_code == 400 and "does not look like an email address" in bad.text
    time.sleep(0.3)
    assert served.sink.messages == [] and served.subscriber("x@example.org") is None


def subscribe_through_the_form(served: Served, *addresses: str) -> None:
    """Post each address to the subscribe form, which answers each as usual."""
    with httpx.Client() as client:
        csrf = form_csrf(client, served.base)
        for address in addresses:
            answer = client.post(f"{served.base}/subscribe", data={"csrf": csrf, "address": address})
            assert answer.status_code == 200 and "Check your inbox" in answer.text


def test_a_confirmation_mail_the_server_refuses_is_one_log_line_and_the_next_one_goes(serve: Callable[..., Served]) -> None:
    """The form's answer is the usual one, the log says why no mail went, and no traceback."""
    served = serve()
    served.sink.rcpt_replies["gone@example.org"] = ["550 5.1.1 no such user"]
    subscribe_through_the_form(served, "gone@example.org", "ok@example.org")
    served.mails_to("ok@example.org", 1)
    assert list(served.sink.by_recipient()) == ["ok@example.org"]
    served.process.terminate()
    _, stderr = served.process.communicate(timeout=30)
    log = stderr.decode("utf-8", "replace")
    assert "Traceback" not in log
    (line,) = [line for line in log.splitlines() if "confirmation mail to gone@example.org not sent: " in line]
    assert "550" in line and "no such user" in line


def test_an_address_digests_cannot_reach_is_never_confirmed_even_where_the_server_takes_smtputf8(
    serve: Callable[..., Served],
) -> None:
    """The digests go without SMTPUTF8 (a non-ASCII address is refused, 553): the confirmation
    mail must not go by SMTPUTF8 either, or the reader confirms into a list that disables them."""
    served = serve()  # aiosmtpd offers SMTPUTF8
    subscribe_through_the_form(served, "j\u00e9r\u00f4me@example.org", "ok@example.org")
    served.mails_to("ok@example.org", 1)
    assert list(served.sink.by_recipient()) == ["ok@example.org"]
    assert served.subscriber("j\u00e9r\u00f4me@example.org")["status"] == "pending"  # type: ignore[index]
    served.process.terminate()
    _, stderr = served.process.communicate(timeout=30)
    assert "confirmation mail to j\u00e9r\u00f4me@example.org not sent: the address needs SMTPUTF8, which digest does not use" in (
        stderr.decode("utf-8", "replace")
    )


def test_a_title_written_over_two_lines_makes_a_one_line_confirmation_subject(serve: Callable[..., Served]) -> None:
    served = serve(title='"""Lab\npapers"""')
    with httpx.Client() as client:
        csrf = form_csrf(client, served.base)
        answer = client.post(f"{served.base}/subscribe", data={"csrf": csrf, "address": "new@example.org"})
        assert answer.status_code == 200
    (confirmation,) = served.mails_to("new@example.org", 1)
    assert confirmation["Subject"] == "Confirm your subscription to Lab papers"


def test_an_address_with_a_terminal_escape_or_a_bidi_control_is_refused_by_the_form(serve: Callable[..., Served]) -> None:
    served = serve()
    with httpx.Client() as client:
        csrf = form_csrf(client, served.base)
        for address in ("x\x1b]0;owned\x07@example.org", "gro.elpmaxe\u202e@example.org", "x\u200b@example.org"):
            answer = client.post(f"{served.base}/subscribe", data={"csrf": csrf, "address": address})
            assert answer.status_code == 400 and "does not look like an email address" in answer.text
    time.sleep(0.3)
    assert served.sink.messages == []
    assert json.loads(served.cli("subscribers", "list", "--json").stdout) == []


def test_a_config_recipient_can_leave_with_one_click_and_the_site_is_served(serve: Callable[..., Served]) -> None:
    served = serve(recipients='[[email.recipients]]\naddress = "fixed@example.org"\n')
    shutil.copy(FIXTURES / "email" / "listing.txt", served.folder / "inbox")
    served.cli("run", "--date", "2025-03-14")
    served.cli("site")
    index = httpx.get(f"{served.base}/")
    assert index.status_code == 200 and "Lab papers" in index.text
    assert httpx.get(f"{served.base}/2025/03/2025-03-14.html").status_code == 200
    (digest,) = served.mails_to("fixed@example.org", 1)
    unsubscribe = link(plain(digest), "unsubscribe")
    preferences = httpx.get(link(plain(digest), "preferences"))
    assert preferences.status_code == 200 and "sets what this address receives" in preferences.text
    assert httpx.post(unsubscribe, content=b"List-Unsubscribe=One-Click").status_code == 200
    left = served.subscriber("fixed@example.org")
    assert left is not None and left["status"] == "unsubscribed"
    shutil.copy(FIXTURES / "snapshots" / "blank-lines.txt", served.folder / "inbox")
    again = json.loads(served.cli("run", "--date", "2025-03-15", "--json").stdout)
    assert again["new"] > 0 and again["deliveries"]["email"] == {"sent": 0, "failed": 0, "pending": 0}


def test_the_preferences_page_sets_topics_categories_and_a_weekly_cadence(serve: Callable[..., Served]) -> None:
    served = serve()
    served.cli("subscribers", "add", "cats@example.org", "--topic", "audio", "--category", "cs.CL", "--category", "eess")
    with sqlite3.connect(served.folder / "var" / "digest.sqlite3") as db:
        subscriber_id, epoch = db.execute("SELECT id, epoch FROM subscribers WHERE address = 'cats@example.org'").fetchone()
    preferences = f"{served.base}/preferences?t={Signer([SECRET.encode()]).subscriber_token('preferences', subscriber_id, epoch)}"
    page = httpx.get(preferences)
    assert page.status_code == 200 and 'name="categories" value="cs.CL eess"' in page.text
    assert '<input type="radio" name="cadence" value="daily" checked>' in page.text and 'name="weekday"' in page.text
    saved = httpx.post(preferences, data={"topics": ["vision"], "save": "1"})  # a form without the other fields keeps them
    assert saved.status_code == 200 and "Saved." in saved.text
    row = served.subscriber("cats@example.org")
    assert row is not None and (row["topics"], row["categories"], row["cadence"]) == (["vision"], ["cs.CL", "eess"], "daily")
    saved = httpx.post(preferences, data={
        "topics": ["audio", "inference"], "categories": "cs.LG, math", "cadence": "weekly", "weekday": "friday", "save": "1",
    })
    assert saved.status_code == 200 and '<option value="friday" selected>' in saved.text
    assert '<input type="radio" name="cadence" value="weekly" checked>' in saved.text
    row = served.subscriber("cats@example.org")
    assert row is not None and (row["topics"], row["categories"], row["cadence"], row["weekday"]) == (
        ["audio", "inference"], ["cs.LG", "math"], "weekly", "friday"
    )
    refused = httpx.post(preferences, data={"categories": "Machine Learning", "cadence": "weekly", "save": "1"})
    assert refused.status_code == 400 and "is not an arXiv category" in refused.text
    refused = httpx.post(preferences, data={"cadence": "hourly", "save": "1"})
    assert refused.status_code == 400 and "is not a cadence" in refused.text
    row = served.subscriber("cats@example.org")
    assert row is not None and (row["categories"], row["cadence"]) == (["cs.LG", "math"], "weekly")  # a refused form changes nothing
    saved = httpx.post(preferences, data={"categories": "", "cadence": "daily", "save": "1"})
    row = served.subscriber("cats@example.org")
    assert row is not None and (row["categories"], row["cadence"], row["weekday"]) == ([], "daily", None)


def test_serve_without_the_secret_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "digest.toml").write_text("", encoding="utf-8")
    result = run_digest(tmp_path, "serve", "--port", "0", env={"DIGEST_SECRET": ""})
    assert result.returncode == 2
    assert result.stderr.splitlines()[0].startswith("error: serve.secret_env: the environment variable DIGEST_SECRET is not set")


def test_a_web_process_carries_on_after_the_database_dropped_its_connections(serve: Callable[..., Served], postgresql_url: str) -> None:
    """PostgreSQL restarted (an upgrade, a failover) or an idle connection cut: the web process's
    connections are gone, and the next requests reconnect instead of failing until a restart."""
    import psycopg

    served = serve(store=f'[store]\nurl = "{postgresql_url}"\n')
    with httpx.Client() as client:
        csrf = form_csrf(client, served.base)
        for n in range(4):
            answer = client.post(f"{served.base}/subscribe", data={"csrf": csrf, "address": f"before{n}@example.org"})
            assert answer.status_code == 200 and "Check your inbox" in answer.text
        with psycopg.connect(postgresql_url, autocommit=True) as admin:
            cut = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE %s",
                (f"digest pid {served.process.pid} on %",),
            ).fetchall()
        assert cut and all(row[0] for row in cut)
        time.sleep(0.5)
        for n in range(4):
            answer = client.post(f"{served.base}/subscribe", data={"csrf": csrf, "address": f"after{n}@example.org"})
            assert answer.status_code == 200 and "Check your inbox" in answer.text, answer.text[:300]
    statuses = {a: served.subscriber(a) for a in [f"after{n}@example.org" for n in range(4)]}
    assert all(s is not None and s["status"] == "pending" for s in statuses.values())
