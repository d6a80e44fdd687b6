"""Fingerprint modules of the ZhianTec / Synochip family (R305, R307, R503, AS608, ZFM-20)."""
