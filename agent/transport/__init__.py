"""Transports: bytes in, bytes out, deadlines.  Nothing here knows APDUs or frames."""
