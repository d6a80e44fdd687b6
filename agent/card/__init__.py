"""ICAO 9303 protocols: MRZ and access keys, APDUs, BAC/PACE, secure messaging, LDS, authentication.

Everything here talks to the card through :class:`agent.transport.base.CardTransport`
only; nothing knows whether the bytes go through pcscd or into the simulator.
"""
