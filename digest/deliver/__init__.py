"""Deliveries: the outbox channels a digest goes to once it is stored (archive files, email)."""
