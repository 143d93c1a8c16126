"""digest: turn the daily flood of new research papers into one digest people read."""

__version__ = "0.1.0"
