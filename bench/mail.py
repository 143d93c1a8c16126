"""The email of a big day: one ``digest run`` on a 2,000-paper snapshot, sent to an aiosmtpd sink.

Checks what SMTP servers and mail clients care about: no line over 998 characters (RFC 5322)
and the message size (the email shows at most ``max_per_topic`` papers per topic and links to
the archive page for the rest).  Prints a table and writes ``bench/results/mail.json``.
Targets: 0 lines over 998 characters, <= 1 MB for a 2,000-paper day.
"""

from __future__ import annotations

import argparse
import json

from _common import (
    DIGEST,
    install_product,
    WORK,
    Row,
    SmtpSink,
    digest_config,
    digest_env,
    email_channel_available,
    fresh_dir,
    print_table,
    run_timed,
    snapshot_text,
    write_results,
)


def main() -> None:
    """Run the big day once and measure its message."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--papers", type=int, default=2_000)
    papers = parser.parse_args().papers
    install_product()
    if not email_channel_available():
        print("mail: the email channel has not landed; nothing to measure")
        return
    folder = fresh_dir(WORK / "mail")
    inbox = fresh_dir(folder / "inbox")
    (inbox / "big-day.txt").write_text(snapshot_text(range(papers)), encoding="utf-8")
    with SmtpSink() as sink:
        config = digest_config(folder, inbox=inbox, smtp_port=sink.port)
        sample = run_timed([DIGEST, "run", "--config", config, "--date", "2025-03-14", "--json"], env=digest_env())
        if sample.returncode != 0:
            raise RuntimeError(f"digest run failed: {sample.stdout[-2000:]}\n{sample.stderr[-2000:]}")
        summary = json.loads(sample.stdout)
        messages = list(sink.messages)
    assert summary["new"] == papers, summary
    assert len(messages) == 1, messages
    message = messages[0]
    rows = [
        Row(f"lines over 998 characters ({papers:,}-paper day)", message["over_998"], "lines", 0),
        Row(f"message size ({papers:,}-paper day)", message["bytes"] / 1_000_000, "MB", 1.0),
        Row("longest line", message["longest_line"], "chars"),
        Row(f"digest run with {papers:,} new papers, wall", sample.seconds, "s"),
        Row(f"digest run with {papers:,} new papers, peak RSS", sample.peak_mb, "MB"),
    ]
    print_table("the email of a big day", rows)
    write_results("mail", rows, {"papers": papers, "message": message, "deliveries": summary["deliveries"]})


if __name__ == "__main__":
    main()
