"""Real infrastructure the simulator and the tests start: pcscd, mosquitto, free ports."""
