"""``digest status``: the store's size, the last digest, pending deliveries and the sources' health."""

from __future__ import annotations

from typing import Any

from digest.config import Config
from digest.store import open_store, store_location
from digest.subscribers import Subscribers


def collect_status(config: Config) -> dict[str, Any]:
    """Everything ``digest status`` shows, as plain JSON-ready values (the store is only read)."""
    with open_store(config.store, readonly=True) as store:
        last = store.last_digest()
        known = {s["name"]: s for s in store.sources()}
        return {
            "store": {"path": store_location(config.store), **store.stats()},
            "last_digest": None if last is None else {
                "id": last.id, "date": last.date.isoformat(), "created_at": last.created_at.isoformat(),
                "new": last.counts.new,
            },
            "subscribers": Subscribers(store).counts(),
            "deliveries": {
                **store.delivery_counts(),
                "pending_rows": [
                    {"digest_date": d.digest_date.isoformat(), "channel": d.channel, "recipient": d.recipient,
                     "attempts": d.attempts, "last_error": d.last_error}
                    for d in store.pending_deliveries()
                ],
            },
            "sources": [
                {
                    "name": s.name,
                    "kind": s.kind,
                    "enabled": s.enabled,
                    "last_success": known.get(s.name, {}).get("last_success"),
                    "last_error": known.get(s.name, {}).get("last_error"),
                    "last_error_at": known.get(s.name, {}).get("last_error_at"),
                    "last_entries": known.get(s.name, {}).get("last_entries"),
                    "etag": known.get(s.name, {}).get("etag"),
                    "last_modified": known.get(s.name, {}).get("last_modified"),
                }
                for s in config.sources
            ],
        }


def format_status(info: dict[str, Any]) -> str:
    """The status as a few readable lines."""
    store = info["store"]
    lines = [
        f"store: {store['path']} ({store['papers']} papers, {store['digests']} digests, "
        f"{store['files']} files ingested, {store['bytes'] / 1e6:.1f} MB)"
    ]
    last = info["last_digest"]
    lines.append("last digest: none yet" if last is None else f"last digest: {last['date']} ({last['new']} new papers)")
    subs = info["subscribers"]
    lines.append("subscribers: " + ", ".join(f"{n} {status}" for status, n in subs.items()))
    d = info["deliveries"]
    lines.append(f"deliveries: {d['sent']} sent, {d['pending']} pending, {d['failed']} failed")
    for row in d["pending_rows"]:
        err = f" ({row['last_error']})" if row["last_error"] else ""
        lines.append(f"  pending: {row['digest_date']} {row['channel']} {row['recipient']} attempts={row['attempts']}{err}")
    lines.append("sources:")
    for s in info["sources"]:
        health = "error: " + s["last_error"] if s["last_error"] else ("ok" if s["last_success"] else "never read")
        extra = f", {s['last_entries']} entries last time" if s["last_entries"] is not None else ""
        lines.append(f"  {s['name']} ({s['kind']}{'' if s['enabled'] else ', disabled'}): {health}"
                     f"{', last success ' + s['last_success'] if s['last_success'] else ''}{extra}")
    return "\n".join(lines)
