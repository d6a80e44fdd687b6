"""Coverage-guided fuzzing of every parser that takes outside bytes (``python -m fuzz --help``)."""
