"""A session with one chip: open it (PACE, else BAC), then read files.

``ChipSession.open`` reads EF.CardAccess first (selected directly with
``00 A4 02 0C 02 01 1C``: some platforms cannot select the MF), prefers PACE
(CAN first, then the MRZ keys), and falls back to BAC when PACE is not offered or
fails.  Files are read by short file identifier (no SELECT), in chunks of a
configurable size; extended-length reads are used when allowed and dropped, with a
fresh authentication, the first time the chip refuses one (a chip ends its secure
messaging session on any error).  Offsets above 32767 use READ BINARY with odd INS.

A chip that refuses READ BINARY by short file identifier gets SELECT by file
identifier instead (under secure messaging), and the answer to the SELECT tells a
missing file (6A82) from a chip without SFI support.  A file whose first bytes
announce more than its data group may hold (:data:`MAX_FILE_SIZE`) is refused
before it is read, and ``deadline`` bounds the whole session: a hostile chip
costs the gate at most that.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from agent.card import bac, pace, tlv
from agent.card.apdu import ApduChannel, CommandApdu, ResponseApdu, check, status_error
from agent.card.ca import CaChoice, CaOutcome, ChipAuthError, chip_authentication
from agent.card.errors import (
    AccessDenied,
    AuthenticationFailed,
    CardError,
    FileNotFoundOnCard,
    FileTooLarge,
    ParseError,
    SecureMessagingError,
    SecurityStatusError,
    SmObjectsError,
    StatusError,
    WrongLengthError,
)
from agent.card.keys import AccessKeys, MrzKey
from agent.card.lds import file_spec
from agent.card.secinfo import SecurityInfos, parse_security_infos
from agent.card.sm import SecureChannel
from agent.transport.base import CardTransport

log = logging.getLogger(__name__)

AID_EMRTD = bytes.fromhex("A0000002471001")
#: largest chunk whose protected response fits a short APDU (256 data bytes): 223 = 0xDF
SHORT_CHUNK = 0xDF
DEFAULT_EXTENDED_CHUNK = 0x1000
MAX_SHORT_OFFSET = 0x7FFF
#: the largest file each data group may be: images (faces, fingerprints, irises) up to 1 MiB, all else 64 KiB
LARGE_FILES = frozenset({"dg2", "dg3", "dg4"})
MAX_FILE_SIZE = 1 << 20
MAX_SMALL_FILE_SIZE = 1 << 16


def max_file_size(name: str) -> int:
    return MAX_FILE_SIZE if name in LARGE_FILES else MAX_SMALL_FILE_SIZE


class FileMissing(CardError):
    """The chip does not have this file (6A82): reported as missing, not as a failure."""


class FileDenied(CardError):
    """The chip refuses this file without more rights (6982), e.g. DG3 without Terminal Authentication."""


@dataclass
class ChipSession:
    transport: CardTransport
    chunk_size: int = 0  # 0: 0xDF short, 0x1000 extended
    extended_length: bool = True
    deadline: float | None = None  # time.monotonic() after which no APDU is sent
    channel: ApduChannel = field(init=False)
    sm: SecureChannel | None = field(default=None, init=False)
    access: str | None = field(default=None, init=False)
    card_access: SecurityInfos | None = field(default=None, init=False)
    _keys: AccessKeys | None = field(default=None, init=False, repr=False)
    extended_refused: bool = field(default=False, init=False)
    sfi_refused: bool = field(default=False, init=False)  # the chip answered READ BINARY by SFI with an error
    _sfi_works: bool = field(default=False, init=False)  # a READ BINARY by SFI succeeded: 6A82 then means missing
    bac_key: MrzKey | None = field(default=None, init=False, repr=False)
    pace_chip_key: bytes = field(default=b"", init=False, repr=False)
    chip_auth: CaOutcome | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.channel = ApduChannel(self.transport, deadline=self.deadline)

    # --- plumbing -----------------------------------------------------------------------------------

    def send(self, command: CommandApdu) -> ResponseApdu:
        if self.sm is not None:
            return self.sm.transceive(command)
        return self.channel.transceive(command)

    def _select_app(self) -> None:
        check(self.channel.transceive(CommandApdu(0x00, 0xA4, 0x04, 0x0C, AID_EMRTD)), "SELECT eMRTD application")

    def _read_card_access(self) -> SecurityInfos | None:
        try:
            check(self.channel.transceive(CommandApdu(0x00, 0xA4, 0x02, 0x0C, b"\x01\x1c")), "SELECT EF.CardAccess")
            data = self._read_all(None, "cardaccess", chunk=SHORT_CHUNK)
        except (StatusError, FileMissing, FileDenied) as exc:
            log.info("no EF.CardAccess (%s): PACE not offered", exc)
            return None
        try:
            return parse_security_infos(data, "EF.CardAccess")
        except ParseError as exc:
            log.warning("EF.CardAccess unreadable, trying BAC: %s", exc)
            return None

    # --- access control -----------------------------------------------------------------------------

    def open(self, keys: AccessKeys) -> str:
        """Authenticate; return "PACE" or "BAC".  :class:`AccessDenied` when no key opens the chip."""
        self._keys = keys
        self.sm = None
        self.bac_key, self.pace_chip_key, self.chip_auth = None, b"", None
        self.card_access = self._read_card_access()
        params = self.card_access.preferred_pace() if self.card_access else None
        failures: list[str] = []
        if params is not None:
            passwords: list[MrzKey | str] = ([keys.can] if keys.can else []) + list(keys.mrz_keys)
            for password in passwords:
                try:
                    self.sm = pace.authenticate(self.channel, params, password)
                    self.access = "PACE"
                    self.pace_chip_key = self.sm.pace_chip_key
                    self._select_app_protected()
                    return "PACE"
                except (pace.PaceError, StatusError, SecureMessagingError) as exc:
                    kind = "CAN" if isinstance(password, str) else "MRZ"
                    failures.append(f"PACE with {kind}: {exc}")
                    log.info("PACE with %s failed: %s", kind, exc)
                    self.sm = None
                    if not isinstance(exc, AuthenticationFailed):
                        break  # the chip refuses PACE itself: no point trying other passwords
        self._select_app()
        for key in keys.mrz_keys:
            try:
                self.sm = bac.authenticate(self.channel, key)
                self.access = "BAC"
                self.bac_key = key
                return "BAC"
            except (AuthenticationFailed, SecureMessagingError) as exc:
                failures.append(f"BAC: {exc}")
                self.sm = None
        error = AccessDenied("no access key opened the chip: " + "; ".join(failures or ["no MRZ key for BAC"]))
        raise error

    def _select_app_protected(self) -> None:
        check(self.send(CommandApdu(0x00, 0xA4, 0x04, 0x0C, AID_EMRTD)), "SELECT eMRTD application")

    def reopen(self) -> None:
        if self._keys is None:
            raise CardError("session was never opened")
        self.open(self._keys)

    # --- chip authenticity -------------------------------------------------------------------------

    def run_chip_auth(self, choice: CaChoice) -> CaOutcome:
        """Chip Authentication, then one protected read under the new keys to prove them.

        :class:`ChipAuthError` when the chip refuses or cannot continue under the new keys (a copy
        of the files on another chip cannot); the session is then gone.
        """
        if self.sm is None:
            raise ChipAuthError("session", "Chip Authentication needs an open secure channel")
        outcome = chip_authentication(self.sm, choice)
        self.sm = outcome.channel
        try:
            self._first_bytes("dg14", 1)
        except (CardError, ParseError) as exc:
            self.sm = None
            raise ChipAuthError(
                "keys", f"the chip cannot go on under the agreed keys, so it lacks DG14's private key: a copy ({exc})"
            ) from exc
        self.chip_auth = outcome
        return outcome

    def id_picc(self) -> bytes:
        """Terminal Authentication's chip identifier: Comp(PACE ephemeral key), or document number + check digit."""
        if self.access == "PACE" and self.pace_chip_key:
            key = self.pace_chip_key
            return key[1 : 1 + (len(key) - 1) // 2]
        if self.bac_key is not None:
            return self.bac_key.mrz_information[:10].encode("ascii")
        raise CardError("no access protocol ran: no chip identifier for Terminal Authentication")

    # --- reading ------------------------------------------------------------------------------------

    @property
    def chunk(self) -> int:
        if self.chunk_size:
            return self.chunk_size if self.use_extended else min(self.chunk_size, SHORT_CHUNK)
        return DEFAULT_EXTENDED_CHUNK if self.use_extended else SHORT_CHUNK

    @property
    def use_extended(self) -> bool:
        return self.extended_length and not self.extended_refused

    def read_file(self, name: str) -> bytes:
        """The whole file; :class:`FileMissing` / :class:`FileDenied` when the chip says so."""
        spec = file_spec(name)
        if self.sfi_refused:
            self._select_file(name)
            return self._read_all(None, name)
        try:
            return self._read_all(spec.sfi, name)  # FileDenied (not a StatusError) goes straight up
        except FileMissing:
            if self._sfi_works:
                raise
            return self._read_selected(name, "6A82")
        except StatusError as exc:
            if isinstance(exc, SecurityStatusError | SmObjectsError):
                raise
            return self._read_selected(name, f"{exc.sw:04X}")

    def _read_selected(self, name: str, refusal: str) -> bytes:
        """READ BINARY by SFI was refused: SELECT the file by its identifier; 6A82 there means missing."""
        self._select_file(name)  # FileMissing / FileDenied when the chip says so
        if not self.sfi_refused:
            log.info("the chip refused READ BINARY by short file identifier (%s): selecting files by FID", refusal)
        self.sfi_refused = True
        return self._read_all(None, name)

    def _select_file(self, name: str) -> None:
        if self.sm is not None and self.sm.broken:
            self.reopen()  # the chip's plain error answer ended the secure channel
        fid = file_spec(name).fid
        response = self.send(CommandApdu(0x00, 0xA4, 0x02, 0x0C, fid.to_bytes(2, "big")))
        if response.sw in (0x6A82, 0x6A83):
            raise FileMissing(f"{name} is not on this chip")
        if response.sw == 0x6982:
            raise FileDenied(f"{name} needs more access rights (6982)")
        check(response, f"SELECT {name}")

    def _first_bytes(self, name: str, length: int) -> bytes:
        """Select ``name`` (by SFI, or by FID on a chip without SFI support) and read its first bytes."""
        if self.sfi_refused:
            self._select_file(name)
            return self._read_once(None, 0, length, name)
        return self._read_once(file_spec(name).sfi, 0, length, name)

    def _read_all(self, sfi: int | None, name: str, chunk: int = 0) -> bytes:
        """Read a whole file; ``chunk`` fixes the size (no extended-length fallback) when given."""
        size = chunk or self.chunk
        read = self._read_once if chunk else self._read
        first = read(sfi, 0, size, name)
        if sfi is not None:
            self._sfi_works = True
        if not first:
            raise FileMissing(f"{name} is empty")
        try:
            total = tlv.total_length(first[:6], name)
        except ParseError:
            total = len(first)
        limit = max_file_size(name)
        if total > limit:
            raise FileTooLarge(f"{name} announces {total} bytes, more than the {limit} its data group may have")
        data = bytearray(first)
        while len(data) < total:
            want = min(chunk or self.chunk, total - len(data))
            part = read(None, len(data), want, name)
            if not part:
                raise CardError(f"{name}: the chip returned no data at offset {len(data)} of {total}")
            data += part
        return bytes(data[:total])

    def _read(self, sfi: int | None, offset: int, length: int, name: str) -> bytes:
        try:
            return self._read_once(sfi, offset, length, name)
        except (WrongLengthError, SecureMessagingError, StatusError) as exc:
            if (
                isinstance(exc, StatusError)
                and not isinstance(exc, WrongLengthError)
                and exc.sw not in (0x6987, 0x6988)
            ):
                raise
            if length <= SHORT_CHUNK or not self.use_extended:
                raise
            log.info("the chip refused an extended-length read (%s): reading in short chunks", exc)
            self.extended_refused = True
            self.reopen()
            if sfi is None:
                # the current file was lost with the session (at offset 0 too): select it again by reading
                # its first byte
                self._first_bytes(name, 1)
            return self._read_once(sfi, offset, min(length, SHORT_CHUNK), name)

    def _read_once(self, sfi: int | None, offset: int, length: int, name: str) -> bytes:
        if offset > MAX_FILE_SIZE:
            raise FileTooLarge(f"{name}: offset {offset} beyond the largest file a data group may have")
        if sfi is not None:
            command = CommandApdu(0x00, 0xB0, 0x80 | sfi, offset, le=length)
        elif offset <= MAX_SHORT_OFFSET:
            command = CommandApdu(0x00, 0xB0, offset >> 8, offset & 0xFF, le=length)
        else:
            command = CommandApdu(0x00, 0xB1, 0x00, 0x00, tlv.encode(0x54, offset.to_bytes(3, "big")), le=length + 4)
        response = self.send(command)
        if response.sw == 0x6A82:
            raise FileMissing(f"{name} is not on this chip")
        if response.sw == 0x6982:
            raise FileDenied(f"{name} needs more access rights (6982)")
        if response.sw != 0x9000:
            raise status_error(response.sw, f"READ BINARY {name}")
        data = response.data
        if command.ins == 0xB1:
            data = tlv.parse_single(data, 0x53, name).value
        return data


__all__ = ["ChipSession", "FileDenied", "FileMissing", "FileNotFoundOnCard", "SecurityStatusError"]
