"""Clinic gate check-in agent.

Reads and verifies chip ID cards (CCCD, ICAO 9303 eMRTD) over PC/SC, drives the
fingerprint module and scanners over serial lines, decides check-ins locally and
reports them to the facility hub over MQTT.
"""

__version__ = "0.1.0"
