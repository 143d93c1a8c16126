"""digest as a user installs it: the wheel built from this checkout, installed with pip into a
fresh venv (its dependencies resolved from the package index, no editable install, no
--system-site-packages), run from a folder outside the repository.

The venv is made once per test session (about 10 s with a warm pip cache).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, REPO, seed
from tests.httpserver import Reply, TestServer


@dataclass(frozen=True)
class Installed:
    """A venv with only the wheel (and what it depends on) installed."""

    bin: Path
    wheel: Path

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a user's shell: this venv's bin first, nothing pointing at the checkout."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DIGEST_CONFIG", "VIRTUAL_ENV", "PYTHONHOME")}
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        env.update(extra)
        return env

    def run(self, cwd: Path, *args: str, code: int = 0, **extra: str) -> subprocess.CompletedProcess[str]:
        """Run ``digest ARGS`` in ``cwd``; assert its exit code."""
        result = subprocess.run(
            [str(self.bin / "digest"), *args], cwd=cwd, env=self.env(**extra), capture_output=True, text=True,
            stdin=subprocess.DEVNULL, timeout=300,
        )
        assert result.returncode == code, (args, result.stdout, result.stderr)
        return result


def _pip_env() -> dict[str, str]:
    """pip's own environment: its usual cache (the test session moves $XDG_CACHE_HOME to a temp folder)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.setdefault("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip"))
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """Build the wheel from the checkout and install it into a new venv with pip."""
    root = tmp_path_factory.mktemp("wheel")
    dist = root / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(dist), str(REPO)],
        check=True, cwd=root, env=_pip_env(), capture_output=True, text=True, timeout=600,
    )
    (wheel,) = dist.glob("digest-*.whl")
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(root / "venv")
    bin_dir = root / "venv" / "bin"
    subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", str(wheel)],
        check=True, cwd=root, env=_pip_env(), capture_output=True, text=True, timeout=600,
    )
    return Installed(bin_dir, wheel)


def test_the_installed_digest_is_the_wheel_not_the_checkout(installed: Installed, tmp_path: Path) -> None:
    probe = "import digest, json, sys; print(json.dumps([digest.__file__, sys.path, sys.flags.no_site]))"
    result = subprocess.run([str(installed.bin / "python"), "-c", probe], cwd=tmp_path, env=installed.env(), capture_output=True, text=True, check=True)
    module, path, _ = json.loads(result.stdout)
    assert Path(module).is_relative_to(installed.bin.parent) and "site-packages" in module
    assert not any(Path(p or ".").resolve().is_relative_to(REPO) for p in path if p and Path(p).exists())
    shown = subprocess.run([str(installed.bin / "python"), "-m", "pip", "show", "-f", "digest"], env=installed.env(), capture_output=True, text=True, check=True)
    assert "Editable project location" not in shown.stdout
    for data in ("digest/_data/config/digest.toml.j2", "digest/_data/config/topics.toml", "digest/_data/templates/email.html.j2"):
        assert data in shown.stdout, data
    assert installed.run(tmp_path, "--version").stdout.strip().endswith("0.1.0")


def test_from_init_to_a_digest_site_and_a_preview(installed: Installed, tmp_path: Path, http_server: TestServer) -> None:
    """The README's path for a user who installed with pipx: init, a snapshot in the inbox, run, site, preview."""
    feed = http_server.add("/rss", Reply(body=(FIXTURES / "feeds" / "arxiv_rss.xml").read_bytes(), headers={"Content-Type": "application/rss+xml"}))
    home = tmp_path / "papers"
    init = installed.run(tmp_path, "init", "papers", "--source", feed)
    assert init.stdout.splitlines()[-3:] == [
        "  cp LISTING.txt inbox/   # a paper-listing page saved as text (the feeds are read too)",
        "  digest run              # read the sources, group the new papers, write archive/",
        "  digest site             # the archive as an HTML site: open site/index.html",
    ]
    assert (home / "digest.toml").is_file() and (home / "inbox").is_dir()

    shutil.copy(seed("000"), home / "inbox")
    summary = json.loads(installed.run(home, "run", "--date", "2025-03-14", "--json").stdout)
    assert [(s["name"], s["ok"], s["entries"]) for s in summary["sources"]] == [("inbox", True, 112), ("127.0.0.1", True, 3)]
    assert summary["new"] == 115
    assert summary["deliveries"]["archive"] == "done"
    day_page = home / "archive" / "2025" / "03" / "2025-03-14.md"
    assert Path(summary["outputs"]["markdown"]) == day_page
    assert "Attention Is Not All You Need for Tabular Data" in day_page.read_text(encoding="utf-8")
    assert (home / "var" / "digest.sqlite3").is_file()

    site = installed.run(home, "site")
    index = home / "site" / "index.html"
    assert site.stdout.splitlines()[-1] == f"index: {index}"
    assert "2025-03-14" in index.read_text(encoding="utf-8")
    assert any(p.name.startswith("2025-03-14") and p.suffix == ".html" for p in (home / "site").rglob("*.html"))

    out = tmp_path / "preview"
    preview = installed.run(home, "preview", "--out", str(out), "--date", "2025-03-13", str(seed("001")))
    assert preview.stdout.startswith("Preview for 2025-03-13: ")
    assert f"html: {out / '2025-03-13.html'}" in preview.stdout
    assert (out / "2025-03-13.html").is_file()


def test_preview_with_no_config_from_the_wheel(installed: Installed, tmp_path: Path) -> None:
    preview = installed.run(tmp_path, "preview", "--out", str(tmp_path / "out"), "--date", "2025-03-14", str(seed("000")))
    assert preview.stderr == "note: no config file: previewing with the built-in defaults (the shipped topics)\n"
    assert preview.stdout.startswith("Preview for 2025-03-14: 112 new papers in 11 topics")
    assert (tmp_path / "out" / "2025-03-14.html").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_the_installed_command_completes_in_bash(installed: Installed, tmp_path: Path) -> None:
    script = installed.run(tmp_path, _DIGEST_COMPLETE="bash_source").stdout
    (tmp_path / "digest.bash").write_text(script, encoding="utf-8")
    command = f'source {tmp_path / "digest.bash"}; COMP_WORDS=(digest s); COMP_CWORD=1; _digest_completion digest; printf "%s\\n" "${{COMPREPLY[@]}}"'
    result = subprocess.run(["bash", "--norc", "--noprofile", "-c", command], env=installed.env(), capture_output=True, text=True, timeout=60)
    assert {"schedule", "site", "status"} <= set(result.stdout.split())
    assert all(word.startswith("s") for word in result.stdout.split())
