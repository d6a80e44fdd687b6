"""Passive Authentication (ICAO 9303-11, 5.1; references.md "Passive Authentication, in order").

Steps, in order; the first that fails ends the check and is named in the result:

``sod`` parse EF.SOD · ``message-digest`` the signed messageDigest attribute equals the
hash of the LDS security object · ``signature`` the document signer's signature over
the signed attributes · ``chain`` the document signer certificate is signed by a
trusted CSCA · ``validity`` both certificates are valid now · ``revocation`` the
signer is not on the CSCA's CRL (skipped when no CRL of that CSCA is loaded) ·
``hash:dgN`` every data group read hashes to the value in the SOD.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any

from asn1crypto import cms
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from agent.card.errors import ParseError
from agent.card.sod import Sod, parse_sod
from agent.card.trust import TrustStore

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


@dataclass(frozen=True)
class Step:
    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class PaResult:
    valid: bool
    failed_step: str | None
    detail: str
    steps: tuple[Step, ...] = field(default=())
    signer: str | None = None
    csca: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "failed_step": self.failed_step,
            "detail": self.detail,
            "steps": [{"name": s.name, "ok": s.ok, "detail": s.detail} for s in self.steps],
            "signer": self.signer,
            "csca": self.csca,
        }


class _Failed(Exception):
    def __init__(self, step: str, detail: str) -> None:
        super().__init__(detail)
        self.step = step
        self.detail = detail


def _digest(name: str, data: bytes) -> bytes:
    if name not in _HASHES:
        raise _Failed("sod", f"unsupported digest algorithm {name}")
    return hashlib.new(name, data).digest()


def _signer_certificate(sod: Sod) -> tuple[cms.SignerInfo, x509.Certificate]:
    signed = sod.signed_data
    infos = signed["signer_infos"]
    if len(infos) != 1:
        raise _Failed("sod", f"expected one signer, found {len(infos)}")
    info = infos[0]
    sid = info["sid"]
    certs = [c.chosen for c in signed["certificates"] if c.name == "certificate"] if signed["certificates"] else []
    for cert in certs:
        if sid.name == "issuer_and_serial_number":
            if cert.issuer == sid.chosen["issuer"] and cert.serial_number == sid.chosen["serial_number"].native:
                return info, x509.load_der_x509_certificate(cert.dump())
        elif cert.key_identifier == sid.chosen.native:
            return info, x509.load_der_x509_certificate(cert.dump())
    raise _Failed("signature", "the document signer certificate is not in EF.SOD")


def _verify_signature(info: cms.SignerInfo, cert: x509.Certificate) -> None:
    signed_attrs = info["signed_attrs"]
    data = signed_attrs.untag().dump()  # DER of the SET OF attributes, with the universal SET tag
    signature = info["signature"].native
    algo = info["signature_algorithm"]
    name = algo.signature_algo
    digest_name = info["digest_algorithm"]["algorithm"].native
    key = cert.public_key()
    try:
        if name == "rsassa_pss":
            params = algo["parameters"]
            hash_name = params["hash_algorithm"]["algorithm"].native
            salt = params["salt_length"].native
            assert isinstance(key, rsa.RSAPublicKey)
            h = _HASHES[hash_name]()
            key.verify(signature, data, padding.PSS(padding.MGF1(h), salt), h)
        elif name == "rsassa_pkcs1v15":
            assert isinstance(key, rsa.RSAPublicKey)
            hash_name = algo.hash_algo if algo["algorithm"].native != "rsassa_pkcs1v15" else digest_name
            key.verify(signature, data, padding.PKCS1v15(), _HASHES[hash_name]())
        elif name == "ecdsa":
            assert isinstance(key, ec.EllipticCurvePublicKey)
            hash_name = algo.hash_algo if algo["algorithm"].native != "ecdsa" else digest_name
            if not signature.startswith(b"\x30"):  # plain r||s (BSI TR-03111) -> DER
                half = len(signature) // 2
                signature = encode_dss_signature(
                    int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big")
                )
            key.verify(signature, data, ec.ECDSA(_HASHES[hash_name]()))
        else:
            raise _Failed("signature", f"unsupported signature algorithm {algo['algorithm'].native}")
    except InvalidSignature:
        raise _Failed("signature", "the document signer's signature over EF.SOD does not verify") from None
    except (AssertionError, KeyError, ValueError, UnsupportedAlgorithm) as exc:
        raise _Failed("signature", f"cannot verify the signature: {exc or type(exc).__name__}") from None


_NEXT_STEP = {"sod": "message-digest", "message-digest": "signature", "signature": "chain", "chain": "validity",
              "validity": "revocation"}  # fmt: skip


def passive_authentication(
    sod_bytes: bytes,
    files: dict[str, bytes],
    trust: TrustStore | None,
    at: dt.datetime | None = None,
) -> PaResult:
    """Run every step; ``files`` maps "dg1".."dg16" to the bytes read."""
    steps: list[Step] = []
    try:
        try:
            return _steps(sod_bytes, files, trust, at or dt.datetime.now(dt.UTC), steps)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            # asn1crypto parses lazily: a malformed structure surfaces in the step that first touches it
            stage = _NEXT_STEP.get(steps[-1].name, steps[-1].name) if steps else "sod"
            raise _Failed(stage, f"malformed data: {exc}") from None
    except _Failed as failed:
        steps.append(Step(failed.step, False, failed.detail))
        signer_name = next((s.detail for s in steps if s.name == "signature" and s.ok), None)
        csca_name = next((s.detail for s in steps if s.name == "chain" and s.ok), None)
        return PaResult(False, failed.step, failed.detail, tuple(steps), signer_name, csca_name)


def _steps(
    sod_bytes: bytes, files: dict[str, bytes], trust: TrustStore | None, at: dt.datetime, steps: list[Step]
) -> PaResult:
    try:
        sod = parse_sod(sod_bytes)
    except ParseError as exc:
        raise _Failed("sod", str(exc)) from None
    steps.append(Step("sod", True, f"{len(sod.dg_hashes)} data group hashes, {sod.digest_algorithm}"))

    info, signer = _signer_certificate(sod)
    signer_name = signer.subject.rfc4514_string()
    digest_name = info["digest_algorithm"]["algorithm"].native
    attrs = {a["type"].native: a["values"][0].native for a in info["signed_attrs"]} if info["signed_attrs"] else {}
    if "message_digest" not in attrs:
        raise _Failed("message-digest", "the signed attributes have no messageDigest")
    if not hmac.compare_digest(attrs["message_digest"], _digest(digest_name, sod.econtent)):
        raise _Failed("message-digest", "messageDigest does not match the LDS security object")
    steps.append(Step("message-digest", True))

    _verify_signature(info, signer)
    steps.append(Step("signature", True, signer_name))

    if trust is None or not trust.certificates:
        raise _Failed("chain", "no trust anchors configured")
    csca = None
    for candidate in trust.issuers_of(signer):
        try:
            signer.verify_directly_issued_by(candidate)
        except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
            continue
        csca = candidate
        break
    if csca is None:
        issuer = signer.issuer.rfc4514_string()
        raise _Failed("chain", f"no trusted CSCA signed the document signer (issuer {issuer})")
    csca_name = csca.subject.rfc4514_string()
    steps.append(Step("chain", True, csca_name))

    for label, cert in (("document signer", signer), ("CSCA", csca)):
        if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
            raise _Failed(
                "validity",
                f"{label} certificate valid {cert.not_valid_before_utc:%Y-%m-%d}"
                f" to {cert.not_valid_after_utc:%Y-%m-%d}, not at {at:%Y-%m-%d}",
            )
    steps.append(Step("validity", True))

    crls = trust.crls_of(csca)
    checked = False
    for crl in crls:
        if not crl.is_signature_valid(csca.public_key()):  # type: ignore[arg-type]
            raise _Failed("revocation", "a CRL of this CSCA has a bad signature")
        checked = True
        if crl.get_revoked_certificate_by_serial_number(signer.serial_number) is not None:
            raise _Failed("revocation", "the document signer certificate is revoked")
    steps.append(Step("revocation", True, "not revoked" if checked else "no CRL for this CSCA: not checked"))

    for name in sorted(files, key=lambda n: (len(n), n)):
        if not name.startswith("dg"):
            continue
        number = int(name[2:])
        expected = sod.dg_hashes.get(number)
        if expected is None:
            raise _Failed(f"hash:{name}", f"{name.upper()} is not in the SOD")
        if not hmac.compare_digest(_digest(sod.digest_algorithm, files[name]), expected):
            raise _Failed(f"hash:{name}", f"{name.upper()} does not match its hash in the SOD")
        steps.append(Step(f"hash:{name}", True))
    return PaResult(True, None, "all steps passed", tuple(steps), signer_name, csca_name)
