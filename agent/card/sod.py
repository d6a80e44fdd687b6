"""EF.SOD (ICAO 9303-10, 4.6.2): the CMS SignedData over the LDSSecurityObject (hashes of every data group)."""

from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass(frozen=True)
class Sod:
    digest_algorithm: str  # of the data group hashes: "sha256", ...
    dg_hashes: dict[int, bytes] = field(repr=False)
    lds_version: str | None
    signed_data: cms.SignedData = field(repr=False)
    econtent: bytes = field(repr=False)


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
    except (ValueError, TypeError, KeyError) as exc:
        raise ParseError(f"malformed CMS SignedData: {exc}", "EF.SOD") from exc
