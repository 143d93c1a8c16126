"""Benchmark: one digest emailed to 10,000 recipients with personalised topic filters.

A local aiosmtpd sink (separate processes, so their memory and CPU are not counted) accepts and
counts the messages; this process runs a real cycle (``pipeline.run_cycle``) on a seed listing
and times the email channel.  Prints messages per second and peak RSS, writes
``bench/results/send.json``.  Targets: >= 200 messages/s, <= 150 MB peak RSS.

The sink is ``--sink-processes`` aiosmtpd servers behind one port (a parent accepts and hands
the connections round-robin to them, as an MTA runs one smtpd per connection); digest sends over
``--connections`` connections (``[email] connections``).  After the run the same sink is timed
with ready-made 48,000-byte messages from a client doing nothing else, over as many connections
and over one, then with a copy digest sent of about the mean size over as many connections
(aiosmtpd's cost follows a message's lines: digest's ~64 bytes per line against the synthetic
78): the sink's own ceiling, reported beside digest's rate.

With ``--readers subscribers`` (the default) the readers are subscribers in the store, each with
personal unsubscribe and preferences links (signed tokens in the List-Unsubscribe header and in
both parts of the body); ``--readers config`` lists them as ``[[email.recipients]]`` instead.
``--weekly F`` makes a fraction F of the subscribers weekly readers whose weekday is the run's: the
run sends them the weekly roll-up (the week holds the seed's digest) instead of the daily email,
and the rate counts both channels' messages over both channels' time.

    .venv/bin/python bench/send.py [--recipients 10000] [--readers subscribers|config] [--weekly 0.3] [--connections 2] [--sink-processes 2] [--snapshot FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SEED = REPO.parent / "shared" / "seeds" / "000_5cb1072ed51f38b9.txt"
FALLBACK = REPO / "examples" / "inbox" / "2026-11-23.txt"
RESULTS = REPO / "bench" / "results" / "send.json"

SINK = """
import asyncio, os, socket, sys, threading
from aiosmtpd.smtp import SMTP

class Count:
    messages = 0
    octets = 0
    async def handle_DATA(self, server, session, envelope):
        Count.messages += 1
        Count.octets += len(envelope.content)
        return "250 OK"

def serve(channel):
    # One aiosmtpd server (its own process and event loop) on the connections the parent passes it.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    handler = Count()
    def receive():
        data, fds, _, _ = socket.recv_fds(channel, 16, 4)
        if not data:
            loop.stop()
            return
        for fd in fds:
            smtp = lambda: SMTP(handler, hostname="sink.test", loop=loop)
            loop.create_task(loop.connect_accepted_socket(smtp, socket.socket(fileno=fd)))
    loop.add_reader(channel.fileno(), receive)
    loop.run_forever()
    channel.sendall(f"{Count.messages} {Count.octets}".encode())
    os._exit(0)

processes, port = int(sys.argv[1]), int(sys.argv[2])
channels = []
for _ in range(processes):
    ours, theirs = socket.socketpair()
    if os.fork() == 0:
        ours.close()
        serve(theirs)
    theirs.close()
    channels.append(ours)
listener = socket.create_server(("127.0.0.1", port), backlog=128)

def accept():
    # Connections go round-robin to the server processes.
    n = 0
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        socket.send_fds(channels[n % processes], [b"c"], [conn.fileno()])
        conn.close()
        n += 1

threading.Thread(target=accept, daemon=True).start()
print("ready", flush=True)
sys.stdin.read()  # until the bench closes our stdin
listener.close()
messages = octets = 0
for channel in channels:
    channel.shutdown(socket.SHUT_WR)
    counted = channel.recv(100).split()
    messages, octets = messages + int(counted[0]), octets + int(counted[1])
for _ in channels:
    os.wait()
print(messages, octets, flush=True)
"""


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


CEILING_BYTES = 48_000


def synthetic_message() -> bytes:
    """CEILING_BYTES of 78-byte lines, as DATA carries it (ends in CRLF, nothing to dot-stuff)."""
    line = b"x" * 75 + b"="
    return b"Subject: ceiling\r\n\r\n" + b"\r\n".join([line] * (CEILING_BYTES // 78)) + b"\r\n"


def sink_ceiling(port: int, count: int, connections: int, wire: bytes) -> tuple[int, int, float]:
    """The sink's own limit: ``count`` copies of the ready-made ``wire`` (dot-stuffed DATA, ending
    in CRLF) over ``connections`` connections, one thread each doing nothing but the SMTP
    transaction.  aiosmtpd's cost grows with the lines of a message, not only its bytes.

    Returns (messages, octets as the sink counts them, messages per second).
    """
    import smtplib
    import threading

    each = count // connections
    clients = [smtplib.SMTP("127.0.0.1", port) for _ in range(connections)]
    for client in clients:
        client.ehlo()
    failures: list[BaseException] = []

    def send(client: smtplib.SMTP) -> None:
        try:
            transactions(client)
        except BaseException as exc:
            failures.append(exc)

    def transactions(client: smtplib.SMTP) -> None:
        for _ in range(each):
            client.mail("bench@example.org")
            client.rcpt("sink@example.org")
            client.putcmd("data")
            assert client.getreply()[0] == 354
            client.send(wire + b".\r\n")
            assert client.getreply()[0] == 250

    threads = [threading.Thread(target=send, args=(c,)) for c in clients]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if failures:
        raise failures[0]
    for client in clients:
        client.quit()
    sent = each * connections
    unstuffed = len(wire.replace(b"\r\n..", b"\r\n."))
    return sent, sent * unstuffed, round(sent / seconds, 1)


def write_config(
    folder: Path, port: int, recipients: int, connections: int, snapshot: Path, rng: random.Random, *, subscribers: bool = False,
    weekly: float = 0.0,
) -> Path:
    """A config with the snapshot in the inbox and ``recipients`` readers of 0 to 3 topics each
    (config recipients, or active subscribers in the store)."""
    from digest.topics import OTHER_CODE, default_taxonomy_path, load_taxonomy

    codes = [*load_taxonomy(default_taxonomy_path()).codes(), OTHER_CODE]
    (folder / "inbox").mkdir()
    shutil.copy(snapshot, folder / "inbox")
    lines = [
        '[[sources]]\nname = "inbox"\nkind = "snapshots"\npath = "inbox/"\n',
        '[archive]\nsite_url = "https://papers.example.org"\n',
        f'[email]\nenabled = true\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\nconnections = {connections}\n',
    ]
    readers = [(f"reader{n}@example.org", sorted(rng.sample(codes, rng.choice([0, 1, 1, 2, 2, 3])))) for n in range(recipients)]
    if subscribers:
        from digest.store import SeenStore

        stamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        with SeenStore.open(folder / "var" / "digest.sqlite3") as store, store.transaction() as db:
            weekday = dt.datetime.now(dt.timezone.utc).weekday()  # the run's: its roll-up goes in this run
            db.executemany(
                "INSERT INTO subscribers (address, status, topics, cadence, weekday, created_at, confirmed_at, updated_at, source)"
                " VALUES (?, 'active', ?, ?, ?, ?, ?, ?, 'bench')",
                (
                    (address, json.dumps(topics), *(("weekly", weekday) if n < weekly * recipients else ("daily", None)),
                     stamp, stamp, stamp)
                    for n, (address, topics) in enumerate(readers)
                ),
            )
    else:
        for address, topics in readers:
            lines.append(f'[[email.recipients]]\naddress = "{address}"\ntopics = {json.dumps(topics)}\n')
    path = folder / "digest.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def main() -> None:
    """Run the benchmark and print and save its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--snapshot", type=Path, default=SEED if SEED.is_file() else FALLBACK)
    parser.add_argument("--connections", type=int, default=2, help="digest's [email] connections")
    parser.add_argument("--sink-processes", type=int, default=2, help="aiosmtpd processes behind the sink's port")
    parser.add_argument("--readers", choices=["subscribers", "config"], default="subscribers",
                        help="subscribers in the store (personal links) or [[email.recipients]]")
    parser.add_argument("--weekly", type=float, default=0.0, help="the fraction of subscribers who read the weekly roll-up")
    args = parser.parse_args()
    os.environ["DIGEST_SECRET"] = "bench-secret-0123456789abcdef"  # signs the personal links

    sys.path.insert(0, str(REPO))
    import digest.deliver.email as email_module
    from digest.config import load_config
    from digest.deliver import ChannelResult, DeliveryContext
    from digest.deliver.archive import ArchiveChannel
    from digest.deliver.email import EmailChannel
    from digest.deliver.weekly import WeeklyChannel
    from digest.pipeline import run_cycle
    from digest.store import Delivery

    class TimedEmail(EmailChannel):
        """The email channel, timed (with the weekly channel's time, when it runs, added)."""

        seconds = 0.0
        cpu_seconds = 0.0  # this process's CPU time in the channel (all its threads)

        def deliver(self, pending: Sequence[Delivery], context: DeliveryContext) -> ChannelResult:
            started, cpu = time.perf_counter(), time.process_time()
            result = super().deliver(pending, context)
            TimedEmail.seconds += time.perf_counter() - started
            TimedEmail.cpu_seconds += time.process_time() - cpu
            return result

    class TimedWeekly(WeeklyChannel):
        """The weekly channel, timed into the same figures."""

        seconds = 0.0
        sent = 0

        def deliver(self, pending: Sequence[Delivery], context: DeliveryContext) -> ChannelResult:
            started, cpu = time.perf_counter(), time.process_time()
            result = super().deliver(pending, context)
            TimedWeekly.seconds = time.perf_counter() - started
            TimedEmail.seconds += TimedWeekly.seconds
            TimedEmail.cpu_seconds += time.process_time() - cpu
            return result

    render_seconds = [0.0, 0, 0.0]  # wall seconds, renders, CPU seconds
    real_render = email_module.render_body

    def timed_render(*args: Any, **kwargs: Any) -> Any:
        started, cpu = time.perf_counter(), time.thread_time()
        try:
            return real_render(*args, **kwargs)
        finally:
            render_seconds[0] += time.perf_counter() - started
            render_seconds[1] += 1
            render_seconds[2] += time.thread_time() - cpu

    email_module.render_body = timed_render  # the channel looks it up at call time

    # Every 250th copy as it went out, to time the sink on digest's own messages afterwards.
    samples: list[bytes] = []
    sizes = [0, 0]  # copies, bytes
    real_outgoing = email_module.outgoing

    def sampled_outgoing(*args: Any, **kwargs: Any) -> Any:
        message = real_outgoing(*args, **kwargs)
        if sizes[0] % 250 == 0:
            samples.append(message.wire())
        sizes[0] += 1
        sizes[1] += len(message.headers) + len(message.body.body)
        return message

    email_module.outgoing = sampled_outgoing

    load_before = os.getloadavg()
    port = free_port()
    sink = subprocess.Popen([sys.executable, "-c", SINK, str(args.sink_processes), str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert sink.stdout is not None and sink.stdin is not None
    assert sink.stdout.readline().strip() == "ready"
    with tempfile.TemporaryDirectory(prefix="digest-bench-send-") as tmp:
        folder = Path(tmp)
        config = load_config(write_config(
            folder, port, args.recipients, args.connections, args.snapshot, random.Random(5), subscribers=args.readers == "subscribers",
            weekly=args.weekly,
        ))
        from digest.deliver.email import readers
        from digest.store import SeenStore

        with SeenStore.open(config.store.path) as store:
            filters = len({r.chosen for r in readers(config, store).values()})
        started = time.perf_counter()
        report = run_cycle(
            config, now=dt.datetime.now(dt.timezone.utc), delivery_channels=[ArchiveChannel(), TimedEmail(), TimedWeekly()]
        )
        total = time.perf_counter() - started
    mean_size = sizes[1] / max(sizes[0], 1)
    typical = min(samples, key=lambda wire: abs(len(wire) - mean_size)) if samples else synthetic_message()
    ceiling = sink_ceiling(port, 1000, args.connections, synthetic_message())
    ceiling_one = sink_ceiling(port, 500, 1, synthetic_message()) if args.connections > 1 else ceiling
    ceiling_own = sink_ceiling(port, 1000, args.connections, typical)
    sink.stdin.close()
    received, octets = (int(x) for x in sink.stdout.readline().split())
    sink.wait(30)
    for timed in {id(c): c for c in (ceiling, ceiling_one, ceiling_own)}.values():
        received -= timed[0]
        octets -= timed[1]

    load_after = os.getloadavg()
    daily, weekly = report.deliveries["email"], report.deliveries["weekly"]
    email = {key: daily[key] + weekly[key] for key in ("sent", "failed", "pending")}
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures = {
        "recipients": args.recipients,
        "readers": args.readers,
        "weekly_fraction": args.weekly,
        "sent_daily": daily["sent"],
        "sent_weekly": weekly["sent"],
        "weekly_seconds": round(TimedWeekly.seconds, 2),
        "distinct_topic_filters": filters,
        "papers": report.counts.new,
        "sent": email["sent"],
        "skipped_nothing_in_topics": args.recipients - email["sent"] - email["failed"] - email["pending"],
        "failed": email["failed"],
        "pending": email["pending"],
        "received_by_sink": received,
        "mean_message_bytes": round(octets / received) if received else 0,
        "email_seconds": round(TimedEmail.seconds, 2),
        "renders": render_seconds[1],
        "render_seconds": round(render_seconds[0], 2),
        "render_cpu_seconds": round(render_seconds[2], 2),
        "messages_per_second": round(email["sent"] / TimedEmail.seconds, 1),
        "client_cpu_seconds": round(TimedEmail.cpu_seconds, 2),
        "client_cpu_ms_per_message_besides_renders": (
            round((TimedEmail.cpu_seconds - render_seconds[2]) / email["sent"] * 1000, 3) if email["sent"] else 0
        ),
        "cycle_seconds": round(total, 2),
        "connections": args.connections,
        "sink_processes": args.sink_processes,
        "sink_ceiling_messages_per_second": ceiling[2],
        "sink_ceiling_one_connection_messages_per_second": ceiling_one[2],
        "sink_ceiling_digest_message_bytes": len(typical),
        "sink_ceiling_digest_message_lines": typical.count(b"\r\n"),
        "sink_ceiling_digest_messages_per_second": ceiling_own[2],
        "peak_rss_mb": round(peak_mb, 1),
        "load_average_1min_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "python": sys.version.split()[0],
        "targets": {"messages_per_second": 200, "peak_rss_mb": 150},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(
        f"{figures['sent']} messages ({filters} distinct topic filters, {figures['skipped_nothing_in_topics']} "
        f"recipients with nothing new in their topics) in {figures['email_seconds']} s: "
        f"{figures['messages_per_second']} messages/s ({daily['sent']} daily, {weekly['sent']} weekly roll-ups in "
        f"{figures['weekly_seconds']} s); peak RSS {figures['peak_rss_mb']} MB "
        f"(mean message {figures['mean_message_bytes']} bytes)"
    )
    print(
        f"  of which rendering {figures['render_seconds']} s ({figures['renders']} renders); over {args.connections} "
        f"connection(s) to {args.sink_processes} aiosmtpd process(es), the sink alone takes "
        f"{figures['sink_ceiling_messages_per_second']} messages/s of {CEILING_BYTES} bytes from a client doing nothing else "
        f"({figures['sink_ceiling_one_connection_messages_per_second']} over one connection), and "
        f"{figures['sink_ceiling_digest_messages_per_second']} messages/s of one of digest's own "
        f"({figures['sink_ceiling_digest_message_bytes']} bytes in {figures['sink_ceiling_digest_message_lines']} lines)"
    )
    print(
        f"  client CPU {figures['client_cpu_seconds']} s ({figures['client_cpu_ms_per_message_besides_renders']} ms "
        f"per message besides renders); load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after"
    )
    print(f"written to {RESULTS.relative_to(REPO)}")
    ok = figures["messages_per_second"] >= 200 and figures["peak_rss_mb"] <= 150 and received == email["sent"]
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
