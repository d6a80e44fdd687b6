"""A simulated ZhianTec/Synochip fingerprint module on a pseudo-terminal, and synthetic fingers."""
