"""The device side of the agent's protocols: a clinic on a laptop.

Simulated chip cards plugged into a real ``pcscd`` through the vpcd driver,
fingerprint modules and scanners on pseudo-terminals, a facility hub on a real
MQTT broker, a population generator and fault injection.  The simulator never
imports the agent's protocol code (card crypto, secure messaging, frame codecs):
a bug shared by both sides would hide itself.  It may import ``agent.errors`` and
``agent.transport.base``, the interfaces it implements.
"""
