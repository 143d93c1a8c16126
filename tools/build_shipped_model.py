"""Learn the shipped topics (config/topics.toml) in advance: digest/topics/shipped-model.npz.

A user's first run then places papers at once instead of learning the taxonomy for seconds.
The file carries the fingerprint of what it was learned from; digest uses it only when the
shipped taxonomy, its examples file and the code still give that fingerprint
(tests/test_topics_grouper.py fails when they do not: run this again).

    python tools/build_shipped_model.py
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from digest.topics import default_taxonomy_path, load_taxonomy  # noqa: E402
from digest.topics.cache import SHIPPED  # noqa: E402
from digest.topics.grouper import learn, teaching  # noqa: E402


def main() -> int:
    taxonomy = load_taxonomy(default_taxonomy_path())
    with tempfile.TemporaryDirectory() as cache:
        os.environ["XDG_CACHE_HOME"] = cache  # learn afresh, whatever is cached or shipped
        SHIPPED.unlink(missing_ok=True)
        arrays = learn(taxonomy)
    key = teaching(taxonomy).key
    np.savez_compressed(SHIPPED, fingerprint=np.array(key), **arrays)
    print(f"wrote {SHIPPED} ({SHIPPED.stat().st_size / 1e6:.1f} MB) for fingerprint {key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
