"""Encodings shared by the agent, the hub and the simulator, below every other layer (strict CBOR)."""
