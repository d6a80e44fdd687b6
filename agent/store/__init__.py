"""Durable storage: the event queue (append-only, fsync'd, crash-safe) and small atomic documents."""
