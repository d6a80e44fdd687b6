"""Events (CBOR, COSE-signed) and the MQTT uplink to the facility hub."""
