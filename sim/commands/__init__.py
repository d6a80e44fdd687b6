"""One module per ``python -m sim`` subcommand (see :mod:`sim.__main__`)."""
