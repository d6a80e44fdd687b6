"""ICAO 9303-11 secure messaging (section 9.8): protect commands, verify and unwrap responses.

One class serves both variants: 3DES (after BAC, or PACE with 3DES) with an 8-byte
send sequence counter, retail MAC and a zero IV; AES (after PACE or Chip
Authentication) with a 16-byte counter, CMAC and IV = E(KSenc, SSC).  The counter
is incremented before each command and each response.  A response whose MAC does
not verify ends the session (:class:`~agent.card.errors.SecureMessagingError`): a
real chip drops its session keys after any SM error, so there is nothing to retry.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from agent.card import crypto, tlv
from agent.card.apdu import ApduChannel, CommandApdu, ResponseApdu, status_error
from agent.card.errors import ParseError, SecureMessagingError

log = logging.getLogger(__name__)


@dataclass
class SecureChannel:
    channel: ApduChannel
    ks_enc: bytes = field(repr=False)
    ks_mac: bytes = field(repr=False)
    ssc: int
    cipher: str  # "3DES" or "AES-128"/"AES-192"/"AES-256"
    broken: bool = False
    #: the chip's ephemeral PACE public key (uncompressed point), Terminal Authentication's ID_PICC; empty after BAC
    pace_chip_key: bytes = field(default=b"", repr=False)

    @property
    def block(self) -> int:
        return 8 if self.cipher == "3DES" else 16

    def _ssc_bytes(self) -> bytes:
        return self.ssc.to_bytes(self.block, "big")

    def _mac(self, data: bytes) -> bytes:
        padded = crypto.pad(data, self.block)
        if self.cipher == "3DES":
            return crypto.retail_mac(self.ks_mac, padded)
        return crypto.aes_cmac(self.ks_mac, padded)[:8]

    def _iv(self) -> bytes:
        if self.cipher == "3DES":
            return bytes(8)
        return crypto.aes_encrypt_block(self.ks_enc, self._ssc_bytes())

    def _encrypt(self, data: bytes) -> bytes:
        padded = crypto.pad(data, self.block)
        if self.cipher == "3DES":
            return crypto.des3_cbc_encrypt(self.ks_enc, padded)
        return crypto.aes_cbc_encrypt(self.ks_enc, padded, self._iv())

    def _decrypt(self, data: bytes) -> bytes:
        if not data or len(data) % self.block:
            raise SecureMessagingError("encrypted response data is not a whole number of blocks")
        if self.cipher == "3DES":
            return crypto.unpad(crypto.des3_cbc_decrypt(self.ks_enc, data))
        return crypto.unpad(crypto.aes_cbc_decrypt(self.ks_enc, data, self._iv()))

    def protect(self, command: CommandApdu) -> CommandApdu:
        """The protected command (9303-11 9.8.6); increments the SSC."""
        if self.broken:
            raise SecureMessagingError("secure messaging session already ended")
        self.ssc += 1
        cla = command.cla | 0x0C
        header = crypto.pad(bytes((cla, command.ins, command.p1, command.p2)), self.block)
        do87 = b""
        if command.data:
            if command.ins % 2:  # odd INS: the data is BER-TLV, sent in DO85 without padding indicator
                do87 = tlv.encode(0x85, self._encrypt(command.data))
            else:
                do87 = tlv.encode(0x87, b"\x01" + self._encrypt(command.data))
        do97 = b""
        extended = command.is_extended
        if command.le is not None:
            size = 2 if extended or command.le > 256 else 1
            modulus = 65536 if size == 2 else 256
            do97 = tlv.encode(0x97, (command.le % modulus).to_bytes(size, "big"))
        mac_input = self._ssc_bytes() + header + do87 + do97
        do8e = tlv.encode(0x8E, self._mac(mac_input))
        body = do87 + do97 + do8e
        return CommandApdu(
            cla, command.ins, command.p1, command.p2, body, le=65536 if extended else 256, extended=extended
        )

    def unprotect(self, response: ResponseApdu) -> ResponseApdu:
        """Verify and decrypt a protected response (9303-11 9.8.7); increments the SSC."""
        self.ssc += 1
        if response.sw in (0x6987, 0x6988) or not response.data:
            # the chip refused the protected command itself: its session is gone
            self.broken = True
            if response.sw == 0x9000:
                raise SecureMessagingError("protected response without secure messaging objects")
            raise status_error(response.sw, "secure messaging")
        try:
            objects = tlv.parse_all(response.data, "secure messaging response")
        except ParseError as exc:
            self.broken = True
            raise SecureMessagingError(f"malformed protected response: {exc}") from exc
        do87 = next((o for o in objects if o.tag in (0x87, 0x85)), None)
        do99 = next((o for o in objects if o.tag == 0x99), None)
        do8e = next((o for o in objects if o.tag == 0x8E), None)
        if do8e is None or do99 is None or len(do99.value) != 2:
            self.broken = True
            raise SecureMessagingError("protected response lacks its status (DO99) or MAC (DO8E)")
        mac_input = self._ssc_bytes() + (do87.to_bytes() if do87 else b"") + do99.to_bytes()
        if self._mac(mac_input) != do8e.value:
            self.broken = True
            raise SecureMessagingError("response MAC does not verify: wrong session keys or a tampered response")
        data = b""
        if do87 is not None:
            payload = do87.value
            if do87.tag == 0x87:
                if not payload or payload[0] != 0x01:
                    self.broken = True
                    raise SecureMessagingError("DO87 without the padding-content indicator 01")
                payload = payload[1:]
            data = self._decrypt(payload)
        return ResponseApdu(data, int.from_bytes(do99.value, "big"))

    def transceive(self, command: CommandApdu) -> ResponseApdu:
        protected = self.protect(command)
        return self.unprotect(self.channel.transceive(protected))
