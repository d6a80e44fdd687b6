"""The facility hub simulator: a reference for hub builders (schema, signatures, dedup, acks, commands)."""
