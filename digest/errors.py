"""Errors the core raises and the CLI turns into one line on stderr.

    DigestError                 message + hint + exit code
    ├── ConfigError             bad config file or key (exit 2)
    ├── LockedError             another cycle holds the store lock (exit 2)
    ├── StoreError              the store cannot be opened or is from a newer version (exit 2)
    ├── TemplateError           a (user) template does not compile or render (exit 2)
    ├── SiteError               the built HTML site has a broken internal link (exit 1)
    ├── OutputError             an output file could not be written: disk full, read-only (exit 1)
    └── SourceError             one source failed (reported, the run goes on; exit 1)
        └── ParseError          the source's input could not be read as papers
"""

from __future__ import annotations


class DigestError(Exception):
    """Base of every error the CLI reports as one line."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class ConfigError(DigestError):
    """The config file is missing, unreadable or has a bad key."""


class LockedError(DigestError):
    """Another process is running a cycle on the same store."""


class StoreError(DigestError):
    """The store cannot be used (corrupt, newer schema, unwritable)."""


class TemplateError(DigestError):
    """A template does not compile or render."""


class SiteError(DigestError):
    """The static site was built but a check failed (a broken internal link)."""

    exit_code = 1


class OutputError(DigestError):
    """An output file or folder could not be written (a full disk, a read-only folder)."""

    exit_code = 1


class SourceError(DigestError):
    """A source failed; the run reports it and goes on with the others."""

    exit_code = 1


class ParseError(SourceError):
    """A source's input could not be read as papers."""
