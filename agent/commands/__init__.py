"""One module per ``gate-agent`` subcommand (see :mod:`agent.cli`)."""
