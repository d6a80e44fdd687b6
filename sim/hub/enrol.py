"""The hub's half of enrolment: sign what a terminal asks for, register its signing key, hand back the pins.

A terminal's request (``gate-agent enroll``) is three public files: ``<T>.pub`` (its
event-signing key), ``<T>.csr`` (PKCS#10, CN = T) and ``<T>.cvreq`` (a CV certificate
request, TR-03110-3 C.2, with the inner signature).  The hub checks each proof of
possession, then writes the answer for the terminal::

    <T>.crt ca.crt                 TLS client certificate from the facility CA, and the CA
    cvca.cvcert dv.cvcert is.cvcert  the CV chain: the simulated DV certified the terminal's EAC key
    hub.pub                        the hub's message-signing key (the terminal pins it)
    ml-root.pem                    the master-list-signer root the terminal pins (trust updates chain to it)

and registers ``<T>.pub`` in its keys directory.  Nothing private crosses.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from agent.card import tlv
from agent.card.cvc import parse_public_key, public_key_of, verify_ta_signature
from agent.card.errors import CardError
from agent.uplink.hubmsg import fingerprint, grouped_sha256, public_pem
from sim.card.eac import READ_DG3, READ_DG4, ROLE_IS, EacPki, eac_pki, make_cvc, seeded_key


class EnrolRefused(Exception):
    """The hub refuses a terminal's request; the message says why."""


@dataclass
class Authority:
    """What the hub signs with."""

    ca_cert: x509.Certificate
    ca_key: ec.EllipticCurvePrivateKey = field(repr=False)
    eac: EacPki
    dv_key: ec.EllipticCurvePrivateKey = field(repr=False)
    hub_key: ed25519.Ed25519PrivateKey = field(repr=False)
    ml_root: x509.Certificate
    dv_chr: str = "VNDVBHYT00001"

    @classmethod
    def load(cls, pki_dir: Path, hub_key: ed25519.Ed25519PrivateKey, ml_root: x509.Certificate,
             eac_seed: int = 0) -> Authority:  # fmt: skip
        """From a ``python -m sim pki`` directory (ca.crt, ca.key) and the seeded simulated EAC PKI."""
        ca = x509.load_pem_x509_certificate((pki_dir / "ca.crt").read_bytes())
        ca_key = serialization.load_pem_private_key((pki_dir / "ca.key").read_bytes(), None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        return cls(ca, ca_key, eac_pki(eac_seed), seeded_key(eac_seed, "dv"), hub_key, ml_root)


def _sign_csr(csr_pem: bytes, terminal: str, authority: Authority, days: int) -> x509.Certificate:
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError as exc:
        raise EnrolRefused(f"{terminal}.csr is not a PEM certificate request: {exc}") from exc
    if not csr.is_signature_valid:
        raise EnrolRefused(f"{terminal}.csr: the request's signature does not verify")
    names = [a.value for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if names != [terminal]:
        raise EnrolRefused(f"{terminal}.csr asks for CN {names}, not {terminal}")
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, terminal)]))
        .issuer_name(authority.ca_cert.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(authority.ca_key, hashes.SHA256())
    )


def parse_cv_request(data: bytes) -> tuple[str, ec.EllipticCurvePublicKey]:
    """The holder reference and key of a CV certificate request whose inner signature verifies."""
    where = "CV certificate request"
    try:
        outer = tlv.parse_single(data, 0x7F21, where)
        body = outer.child(0x7F4E, where)
        signature = outer.child(0x5F37, where).value
        fields = {item.tag: item for item in body.children(where)}
        if 0x7F49 not in fields or 0x5F20 not in fields:
            raise EnrolRefused("the request needs a public key (7F49) and a holder reference (5F20)")
        public = parse_public_key(fields[0x7F49], where)
        if public.domain is None:
            raise EnrolRefused("the request's key carries no domain parameters")
        key = public_key_of(public)
        holder = fields[0x5F20].value.decode("ascii")
    except (CardError, UnicodeDecodeError) as exc:
        raise EnrolRefused(f"malformed CV certificate request: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise EnrolRefused("only EC terminal keys are certified")
    if not verify_ta_signature(key, public.oid, signature, body.to_bytes()):
        raise EnrolRefused("the inner signature of the CV certificate request does not verify (no proof of possession)")
    return holder, key


def enroll_terminal(request_dir: Path, terminal: str, authority: Authority, keys_dir: Path, out: Path,
                    *, days: int = 30, rights: int = READ_DG3 | READ_DG4) -> dict[str, Any]:  # fmt: skip
    """Check the request, sign, register the signing key, write the answer; EnrolRefused otherwise."""
    signing_file = request_dir / f"{terminal}.pub"
    try:
        signing = serialization.load_pem_public_key(signing_file.read_bytes())
        csr_pem = (request_dir / f"{terminal}.csr").read_bytes()
        cvreq = (request_dir / f"{terminal}.cvreq").read_bytes()
    except (OSError, ValueError) as exc:
        raise EnrolRefused(f"incomplete request in {request_dir}: {exc}") from exc
    if not isinstance(signing, ed25519.Ed25519PublicKey):
        raise EnrolRefused(f"{signing_file.name}: the event-signing key must be Ed25519")
    if any(request_dir.glob("*.key")):
        raise EnrolRefused(f"{request_dir} holds a private key; keys never leave the terminal")
    tls = _sign_csr(csr_pem, terminal, authority, days)
    holder, eac_key = parse_cv_request(cvreq)
    today = dt.date.today()
    is_cert = make_cvc(car=authority.dv_chr, chr_=holder, public_key=eac_key, role_rights=ROLE_IS | rights,
                       effective=today - dt.timedelta(days=1), expiration=today + dt.timedelta(days=days),
                       signer=authority.dv_key)  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{terminal}.crt").write_bytes(tls.public_bytes(serialization.Encoding.PEM))
    (out / "ca.crt").write_bytes(authority.ca_cert.public_bytes(serialization.Encoding.PEM))
    (out / "cvca.cvcert").write_bytes(authority.eac.certificates["cvca"])
    (out / "dv.cvcert").write_bytes(authority.eac.certificates["dv"])
    (out / "is.cvcert").write_bytes(is_cert)
    (out / "hub.pub").write_bytes(public_pem(authority.hub_key.public_key()))
    (out / "ml-root.pem").write_bytes(authority.ml_root.public_bytes(serialization.Encoding.PEM))
    keys_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(signing_file, keys_dir / f"{terminal}.pub")
    root_der = authority.ml_root.public_bytes(serialization.Encoding.DER)
    return {
        "terminal": terminal,
        "out": str(out),
        "terminal_signing_key_fingerprint": fingerprint(signing),
        "hub_key_fingerprint": fingerprint(authority.hub_key.public_key()),
        "ml_root_fingerprint": grouped_sha256(root_der),
        "eac_holder": holder,
    }
