"""``digest topics eval --llm``: the model's second opinion measured on the dev labels, through
the real CLI, against a scripted chat-completions server on 127.0.0.1."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.chatserver import chat_server, good, requests
from tests.conftest import run_digest
from tests.httpserver import TestServer
from tests.seed_papers import LABELS, label_rows


def config_for(tmp_path: Path, base_url: str) -> None:
    (tmp_path / "digest.toml").write_text(
        f'[llm]\nenabled = true\nbase_url = "{base_url}"\nmodel = "oracle"\nbatch_size = 20\ntimeout = 20\n', encoding="utf-8"
    )


def test_an_oracle_second_opinion_fixes_every_weak_placement_it_is_asked_about(tmp_path: Path, http_server: TestServer) -> None:
    label_of = {row["title"]: row["topic"] for row in label_rows()}

    def oracle(paper: dict[str, Any]) -> str:
        return label_of.get(paper["title"], "other")

    config_for(tmp_path, chat_server(http_server, good(topic=oracle)))
    done = run_digest(tmp_path, "topics", "eval", str(LABELS), "--llm", "--config", "digest.toml", check_code=0)
    lines = done.stdout.splitlines()
    head = re.fullmatch(r"second opinion of oracle: (\d+) of (\d+) placements weak, (\d+) answered with a topic code in (\d+) requests, (\d+) changed", lines[0])
    assert head, lines[0]
    weak, total, answered, made, changed = map(int, head.groups())
    assert 0 < weak < total and answered == weak and made == len(requests(http_server)) == -(-weak // 20)
    right = re.fullmatch(r"on the weak placements: the grouper right (\d+)/(\d+), with the model (\d+)/(\d+)", lines[1])
    assert right and int(right[3]) == int(right[4]) == weak and int(right[1]) + changed == weak
    with_model = float(lines[3].split()[1])
    alone = float(lines[lines.index("the grouper alone:") + 2].split()[1])
    assert with_model > alone
    bodies = requests(http_server)
    assert all(p["choose_topic"] for b in bodies for p in json.loads(b["messages"][-1]["content"])["papers"])
    assert 'You may leave out "summary"' in bodies[0]["messages"][0]["content"]  # no summaries paid for


def test_eval_llm_needs_a_model_and_a_dead_server_changes_nothing(tmp_path: Path, http_server: TestServer) -> None:
    (tmp_path / "digest.toml").write_text("", encoding="utf-8")
    done = run_digest(tmp_path, "topics", "eval", str(LABELS), "--llm", "--config", "digest.toml", check_code=2)
    assert done.stderr.startswith("error: --llm needs a model: no [llm] model in the config")
    from tests.httpserver import Reply

    config_for(tmp_path, chat_server(http_server, Reply(status=500)))
    done = run_digest(tmp_path, "topics", "eval", str(LABELS), "--llm", "--config", "digest.toml", check_code=0)
    lines = done.stdout.splitlines()
    assert ", 0 answered with a topic code in " in lines[0] and lines[0].endswith(", 0 changed")
    assert lines[2].startswith("(no answer for some: HTTP 500")
    assert lines[4].split()[1] == lines[lines.index("the grouper alone:") + 2].split()[1]  # the same accuracy
