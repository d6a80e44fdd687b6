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
from typing import Any, TypeVar

from asn1crypto import cms
from cryptography import x509

from agent.card.errors import ParseError
from agent.card.sod import Sod, parse_sod
from agent.card.trust import (
    HASHES,
    SignatureError,
    TrustStore,
    certificate_key,
    signer_certificate,
    verify_crl,
    verify_issued_by,
    verify_signature,
)

_CONTENT_TYPE = "2.23.136.1.1.1"


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
    return hashlib.new(name, data).digest()


def _signer_certificate(sod: Sod) -> tuple[cms.SignerInfo, x509.Certificate]:
    signed = sod.signed_data
    infos = signed["signer_infos"]
    if len(infos) != 1:
        raise _Failed("sod", f"expected one signer, found {len(infos)}")
    info = infos[0]
    try:
        cert = signer_certificate(signed, info)  # by issuer and serial, or key identifier (SKI, else RFC 5280 m. 1)
    except (ValueError, x509.InvalidVersion) as exc:
        raise _Failed("signature", f"the document signer certificate is malformed: {exc}") from None
    if cert is None:
        raise _Failed("signature", "the document signer certificate is not in EF.SOD")
    return info, cert


_E = TypeVar("_E", bound=x509.ExtensionType)


def _extension(cert: x509.Certificate, kind: type[_E]) -> _E | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _is_ca(cert: x509.Certificate) -> bool:
    """A CSCA must not be marked as an end entity (RFC 5280 4.2.1.9); a certificate without the extension
    is accepted as an anchor because it was installed as one."""
    constraints = _extension(cert, x509.BasicConstraints)
    return constraints is None or constraints.ca


def _check_algorithms(sod: Sod) -> None:
    infos = sod.signed_data["signer_infos"]
    if len(infos) != 1:
        raise _Failed("sod", f"expected one signer, found {len(infos)}")
    info = infos[0]
    if sod.digest_algorithm not in HASHES:
        raise _Failed("sod", f"unsupported data group hash algorithm {sod.digest_algorithm}")
    digest = info["digest_algorithm"]["algorithm"].native
    if digest not in HASHES:
        raise _Failed("sod", f"unsupported signer digest algorithm {digest}")


_NEXT_STEP = {"sod": "message-digest", "message-digest": "signature", "signature": "chain", "chain": "validity",
              "validity": "revocation"}  # fmt: skip


def passive_authentication(
    sod_bytes: bytes,
    files: dict[str, bytes],
    trust: TrustStore | None,
    at: dt.datetime | None = None,
) -> PaResult:
    """Run every step; ``files`` maps "dg1".."dg16" to the bytes read (other names are not hashed).

    ``at`` is the time the certificates must be valid (default: now; a naive time is taken as UTC).
    Never raises for bad input: a malformed or hostile EF.SOD is a failed step.
    """
    steps: list[Step] = []
    try:
        try:
            when = at or dt.datetime.now(dt.UTC)
            if when.tzinfo is None:
                when = when.replace(tzinfo=dt.UTC)
            return _steps(sod_bytes, files, trust, when, steps)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, x509.InvalidVersion) as exc:
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

    _check_algorithms(sod)
    steps.append(Step("sod", True, f"{len(sod.dg_hashes)} data group hashes, {sod.digest_algorithm}"))
    info, signer = _signer_certificate(sod)

    signer_name = signer.subject.rfc4514_string()
    digest_name = info["digest_algorithm"]["algorithm"].native
    if not info["signed_attrs"]:
        raise _Failed("message-digest", "the signer has no signed attributes (9303-10 requires them)")
    attrs: dict[str, list[object]] = {}
    for attr in info["signed_attrs"]:
        attrs.setdefault(attr["type"].dotted, []).extend(v for v in attr["values"])
    digests = attrs.get("1.2.840.113549.1.9.4", [])
    types = attrs.get("1.2.840.113549.1.9.3", [])
    if len(digests) != 1:
        raise _Failed("message-digest", f"the signed attributes hold {len(digests)} messageDigest values, not one")
    if len(types) != 1 or types[0].dotted != _CONTENT_TYPE:  # type: ignore[attr-defined]
        raise _Failed("message-digest", "the signed contentType attribute is not the LDS security object")
    if not hmac.compare_digest(digests[0].native, _digest(digest_name, sod.econtent)):  # type: ignore[attr-defined]
        raise _Failed("message-digest", "messageDigest does not match the LDS security object")
    steps.append(Step("message-digest", True))

    try:
        verify_signature(
            certificate_key(signer),
            info["signature_algorithm"],
            info["signature"].native,
            info["signed_attrs"].untag().dump(),  # DER SET OF attributes, universal SET tag (RFC 5652, 5.4)
            digest_name,
        )
    except SignatureError as exc:
        what = "unsupported" if exc.unsupported else "bad"
        raise _Failed("signature", f"{what} document signer signature over EF.SOD: {exc}") from None
    steps.append(Step("signature", True, signer_name))

    if trust is None or not trust.certificates:
        raise _Failed("chain", "no trust anchors configured")
    csca = None
    tried: list[str] = []
    for candidate in trust.issuers_of(signer):
        if not _is_ca(candidate):
            tried.append("the certificate of that name is not a CA (basicConstraints cA false)")
            continue
        try:
            verify_issued_by(signer, certificate_key(candidate))
        except SignatureError as exc:
            tried.append(str(exc))
            continue
        csca = candidate
        break
    if csca is None:
        issuer = signer.issuer.rfc4514_string()
        why = f" ({len(tried)} CSCA of that name tried: {tried[0]})" if tried else ""
        raise _Failed("chain", f"no trusted CSCA signed the document signer (issuer {issuer}){why}")
    if _is_ca(signer) is True and _extension(signer, x509.BasicConstraints) is not None:
        raise _Failed("chain", "the document signer certificate is a CA certificate, not a document signer")
    usage = _extension(signer, x509.KeyUsage)
    if usage is not None and not usage.digital_signature:
        raise _Failed("chain", "the document signer certificate's key usage does not allow digital signatures")
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
    stale = []
    # after a CSCA key rollover the CRL is signed by the newest key of the same name: any trusted CSCA key of
    # that name makes it authentic (9303-12: one CRL per issuing state, covering every certificate it issued)
    same_name = [csca, *(c for c in trust.issuers_of(signer) if c is not csca)]
    for crl in crls:
        errors = []
        for key_holder in same_name:
            try:
                verify_crl(crl, certificate_key(key_holder))
                break
            except SignatureError as exc:
                errors.append(str(exc))
        else:
            raise _Failed("revocation", f"a CRL naming this CSCA does not verify: {errors[0]}") from None
        checked = True
        if crl.next_update_utc is not None and crl.next_update_utc < at:
            stale.append(f"{crl.next_update_utc:%Y-%m-%d}")
        if crl.get_revoked_certificate_by_serial_number(signer.serial_number) is not None:
            raise _Failed("revocation", "the document signer certificate is revoked")
    note = "not revoked" if checked else "no CRL for this CSCA: not checked"
    if stale:  # RFC 5280 6.3.3 wants a fresh CRL; an offline gate keeps the last one it had and says so
        note += f" (CRL next update was {', '.join(stale)})"
    steps.append(Step("revocation", True, note))

    for name in sorted(files, key=lambda n: (len(n), n)):
        if not (name.startswith("dg") and name[2:].isdigit()):
            continue
        number = int(name[2:])
        expected = sod.dg_hashes.get(number)
        if expected is None:
            raise _Failed(f"hash:{name}", f"{name.upper()} is not in the SOD")
        if not hmac.compare_digest(_digest(sod.digest_algorithm, files[name]), expected):
            raise _Failed(f"hash:{name}", f"{name.upper()} does not match its hash in the SOD")
        steps.append(Step(f"hash:{name}", True))
    return PaResult(True, None, "all steps passed", tuple(steps), signer_name, csca_name)
