"""Basic Access Control (ICAO 9303-11, section 4.3): 3DES mutual authentication from the MRZ.

Kept for chips that offer no PACE (older passports) and as the fallback when PACE
fails.  Randomness comes from :func:`os.urandom` unless a test injects it (the
worked example of 9303-11 Appendix D replays fixed values).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable

from agent.card import crypto
from agent.card.apdu import ApduChannel, CommandApdu, check
from agent.card.errors import AuthenticationFailed, SecureMessagingError, StatusError
from agent.card.keys import MrzKey
from agent.card.sm import SecureChannel


def bac_keys(key: MrzKey) -> tuple[bytes, bytes]:
    """KEnc and KMac from the MRZ information (9303-11 9.7.2)."""
    seed = hashlib.sha1(key.mrz_information.encode("ascii")).digest()[:16]  # noqa: S324 - mandated by 9303-11
    return crypto.kdf(seed, crypto.ENC, "3DES"), crypto.kdf(seed, crypto.MAC, "3DES")


def authenticate(channel: ApduChannel, key: MrzKey, random: Callable[[int], bytes] = os.urandom) -> SecureChannel:
    """Run BAC; return the secure channel.  Wrong keys: :class:`AuthenticationFailed`."""
    k_enc, k_mac = bac_keys(key)
    rnd_ic = check(channel.transceive(CommandApdu(0x00, 0x84, 0, 0, le=8)), "GET CHALLENGE")
    if len(rnd_ic) != 8:
        raise SecureMessagingError(f"GET CHALLENGE returned {len(rnd_ic)} bytes, expected 8")
    rnd_ifd, k_ifd = random(8), random(16)
    e_ifd = crypto.des3_cbc_encrypt(k_enc, rnd_ifd + rnd_ic + k_ifd)
    m_ifd = crypto.retail_mac(k_mac, crypto.pad(e_ifd, 8))
    response = channel.transceive(CommandApdu(0x00, 0x82, 0, 0, e_ifd + m_ifd, le=40))
    try:
        data = check(response, "EXTERNAL AUTHENTICATE")
    except StatusError as exc:
        # 6300 / 6982 here mean the chip did not accept our cryptogram: the MRZ key is wrong
        raise AuthenticationFailed(exc.sw, "BAC EXTERNAL AUTHENTICATE") from exc
    if len(data) != 40:
        raise SecureMessagingError(f"EXTERNAL AUTHENTICATE returned {len(data)} bytes, expected 40")
    e_ic, m_ic = data[:32], data[32:]
    if not hmac.compare_digest(crypto.retail_mac(k_mac, crypto.pad(e_ic, 8)), m_ic):
        raise SecureMessagingError("the chip's BAC cryptogram has a bad MAC")
    plain = crypto.des3_cbc_decrypt(k_enc, e_ic)
    if plain[8:16] != rnd_ifd or plain[:8] != rnd_ic:
        raise SecureMessagingError("the chip's BAC cryptogram does not return our challenge")
    k_ic = plain[16:32]
    seed = bytes(a ^ b for a, b in zip(k_ifd, k_ic, strict=True))
    ssc = int.from_bytes(rnd_ic[4:] + rnd_ifd[4:], "big")
    return SecureChannel(
        channel, crypto.kdf(seed, crypto.ENC, "3DES"), crypto.kdf(seed, crypto.MAC, "3DES"), ssc, "3DES"
    )
