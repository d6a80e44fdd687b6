"""EF.SOD (ICAO 9303-10, 4.6.2): the CMS SignedData over the LDSSecurityObject (hashes of every data group)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from asn1crypto import algos, cms, core

from agent.card import tlv
from agent.card.errors import ParseError

LDS_SECURITY_OBJECT = "2.23.136.1.1.1"


class DataGroupHash(core.Sequence):  # type: ignore[misc]
    _fields = [("data_group_number", core.Integer), ("data_group_hash_value", core.OctetString)]  # noqa: RUF012 - asn1crypto schema


class DataGroupHashes(core.SequenceOf):  # type: ignore[misc]
    _child_spec = DataGroupHash


class LdsVersionInfo(core.Sequence):  # type: ignore[misc]
    _fields = [("lds_version", core.PrintableString), ("unicode_version", core.PrintableString)]  # noqa: RUF012 - asn1crypto schema


class LdsSecurityObject(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012 - asn1crypto schema
        ("version", core.Integer),
        ("hash_algorithm", algos.DigestAlgorithm),
        ("data_group_hash_values", DataGroupHashes),
        ("lds_version_info", LdsVersionInfo, {"optional": True}),
    ]


_T = TypeVar("_T")


def _lazy(fn: Callable[[Sod], _T]) -> Callable[[Sod], _T]:
    """asn1crypto decodes on access: turn a late decoding error into the ParseError callers expect."""

    @functools.wraps(fn)
    def wrapper(self: Sod) -> _T:
        try:
            return fn(self)
        except ParseError:
            raise
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError) as exc:
            raise ParseError(f"malformed CMS SignedData: {exc}", "EF.SOD") from exc

    return wrapper


@dataclass(frozen=True)
class Sod:
    digest_algorithm: str  # of the data group hashes: "sha256", ...
    dg_hashes: dict[int, bytes] = field(repr=False)
    lds_version: str | None
    signed_data: cms.SignedData = field(repr=False)
    econtent: bytes = field(repr=False)

    @property
    @_lazy
    def signer_certificates(self) -> list[bytes]:
        """DER of every certificate carried in the SignedData (normally the one document signer)."""
        certs = self.signed_data["certificates"]
        return [c.chosen.dump() for c in certs if c.name == "certificate"] if certs else []

    @property
    @_lazy
    def signer_info(self) -> cms.SignerInfo:
        infos = self.signed_data["signer_infos"]
        if len(infos) != 1:
            raise ParseError(f"expected one signer, found {len(infos)}", "EF.SOD")
        return infos[0]

    @property
    @_lazy
    def signed_attributes(self) -> dict[str, Any]:
        """Signed attributes by name ("content_type", "message_digest", "signing_time"...), first value each."""
        attrs = self.signer_info["signed_attrs"]
        return {a["type"].native: a["values"][0].native for a in attrs} if attrs else {}

    @property
    @_lazy
    def signature_algorithm(self) -> str:
        return str(self.signer_info["signature_algorithm"]["algorithm"].native)

    @property
    @_lazy
    def signature(self) -> bytes:
        return bytes(self.signer_info["signature"].native)


def parse_sod(data: bytes) -> Sod:
    """Parse EF.SOD; any malformation is a ParseError (the PA step "sod")."""
    outer = tlv.parse_single(data, 0x77, "EF.SOD")
    try:
        info = cms.ContentInfo.load(outer.value, strict=True)
        if info["content_type"].native != "signed_data":
            raise ParseError(f"content type is {info['content_type'].native}, not signed data", "EF.SOD")
        signed = info["content"]
        encap = signed["encap_content_info"]
        if encap["content_type"].dotted != LDS_SECURITY_OBJECT:
            found = encap["content_type"].dotted
            raise ParseError(f"encapsulated content is {found}, not an LDS security object", "EF.SOD")
        econtent = encap["content"].native
        if not isinstance(econtent, bytes):
            raise ParseError("encapsulated content is missing", "EF.SOD")
        lso = LdsSecurityObject.load(econtent, strict=True)
        signed["signer_infos"].native  # noqa: B018 - asn1crypto parses lazily: surface malformed signer infos here
        hashes = {
            int(item["data_group_number"].native): bytes(item["data_group_hash_value"].native)
            for item in lso["data_group_hash_values"]
        }
        version = None
        if lso["lds_version_info"].native is not None:
            version = str(lso["lds_version_info"]["lds_version"].native)
        return Sod(lso["hash_algorithm"]["algorithm"].native, hashes, version, signed, bytes(econtent))
    except ParseError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError) as exc:
        # asn1crypto surfaces malformed input as any of these (an IndexError from a short SignerIdentifier,
        # an AttributeError from an undecodable choice): all of them are a malformed EF.SOD
        raise ParseError(f"malformed CMS SignedData: {exc}", "EF.SOD") from exc
