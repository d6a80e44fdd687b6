"""Terminal enrolment: keys are born on the terminal and never leave it; the hub is pinned here.

``gate-agent enroll`` (``docs/enrol.md``) does two things, each safe to repeat:

* **request** — create, when missing, the terminal's three private keys (event signing
  Ed25519, TLS client EC P-256, EAC terminal key on the CVCA's curve) and write only
  their public parts for the hub: the signing key (PEM), a PKCS#10 CSR for the facility
  CA (CN = terminal id) and a CV certificate request (BSI TR-03110-3, C.2: a CV
  certificate body without CHAT and dates, signed by the new key itself — the inner
  signature, proof of possession).
* **install** — take what the hub signed (TLS certificate and CA, CV certificate chain)
  and the keys the terminal must trust (the hub's message-signing key, the
  master-list-signer root), check that every certificate is for *this* terminal's keys,
  and pin the trust anchors.  Their SHA-256 fingerprints are printed for the installer
  to compare with what the hub printed; a pin that exists is replaced only on request.

Files under the state directory (mode 0600 for private keys):

    terminal.key / terminal.pub     event signing (Ed25519)
    tls/terminal.key, terminal.crt, ca.crt   (or the paths of [uplink] tls_key/tls_cert/tls_ca)
    <terminal_credentials>/terminal.key + *.cvcert
    hub.pub                          the pinned hub key (hub messages are verified with it)
    ml-root.pem                      the pinned master-list-signer root (trust updates chain to it)
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from agent.card import tlv
from agent.card.cvc import CvcError, load_credentials, sign_ta
from agent.card.pace import encode_oid
from agent.config import Config
from agent.errors import GateAgentError
from agent.store.files import load_or_create_private_key, public_pem, write_atomic
from agent.uplink.events import load_signing_key
from agent.uplink.hubmsg import HubKeyError, fingerprint, grouped_sha256, load_public_key

log = logging.getLogger(__name__)

TA_ECDSA_SHA256 = "0.4.0.127.0.7.2.2.2.2.3"
HUB_PIN = "hub.pub"
ML_ROOT_PIN = "ml-root.pem"


class EnrolError(GateAgentError):
    """Enrolment cannot go on; the message names the file or the check."""


@dataclass(frozen=True)
class EnrolPaths:
    state: Path
    signing_key: Path
    tls_key: Path
    tls_cert: Path
    tls_ca: Path
    eac_dir: Path
    hub_pin: Path  # where the daemon looks for it: uplink.hub_key, or state_dir/hub.pub

    @property
    def ml_root(self) -> Path:
        return self.state / ML_ROOT_PIN

    @classmethod
    def from_config(cls, cfg: Config) -> EnrolPaths:
        state = cfg.state_dir
        up = cfg.uplink
        tls = state / "tls"
        eac = cfg.reader.terminal_credentials or str(state / "terminal")
        return cls(
            state=state,
            signing_key=state / "terminal.key",
            tls_key=Path(up.tls_key or tls / "terminal.key"),
            tls_cert=Path(up.tls_cert or tls / "terminal.crt"),
            tls_ca=Path(up.tls_ca or tls / "ca.crt"),
            eac_dir=Path(eac),
            hub_pin=cfg.hub_key_path,
        )


def _ec_key(path: Path, curve: ec.EllipticCurve, renew: bool) -> ec.EllipticCurvePrivateKey:
    """An EC private key born here (0600), or the one already here."""
    return load_or_create_private_key(
        path, ec.EllipticCurvePrivateKey, lambda: ec.generate_private_key(curve), EnrolError,
        "cannot load the key", "expected an EC private key", renew=renew, dir_mode=0o700,
    )  # fmt: skip


def chr_for(country: str, terminal_id: str, sequence: int = 1) -> str:
    """Certificate holder reference: country (2) + holder mnemonic (<= 9, A-Z0-9) + sequence (5 digits)."""
    mnemonic = re.sub(r"[^A-Z0-9]", "", terminal_id.upper())[:9] or "GATE"
    return f"{country}{mnemonic}{sequence:05d}"


def _curve_domain(curve: ec.EllipticCurve) -> bytes:
    """Domain parameters 81..85 of a named curve (TR-03110-3 D.3), from the ecdsa package's tables."""
    from ecdsa import curves

    table = {"brainpoolP256r1": curves.BRAINPOOLP256r1, "secp256r1": curves.NIST256p,
             "brainpoolP384r1": curves.BRAINPOOLP384r1, "secp384r1": curves.NIST384p}  # fmt: skip
    c = table.get(curve.name)
    if c is None:
        raise EnrolError(f"curve {curve.name} is not supported for Terminal Authentication")
    size = c.baselen
    g = b"\x04" + int(c.generator.x()).to_bytes(size, "big") + int(c.generator.y()).to_bytes(size, "big")
    p = c.curve.p()
    return (
        tlv.encode(0x81, p.to_bytes(size, "big"))
        + tlv.encode(0x82, (c.curve.a() % p).to_bytes(size, "big"))
        + tlv.encode(0x83, c.curve.b().to_bytes(size, "big"))
        + tlv.encode(0x84, g)
        + tlv.encode(0x85, c.order.to_bytes(size, "big"))
    )


def _oid(dotted: str) -> bytes:
    return tlv.encode(0x06, encode_oid(dotted))


def cv_request(key: ec.EllipticCurvePrivateKey, holder: str, car: str | None = None) -> bytes:
    """TR-03110-3 C.2: ``7F21 {7F4E {5F29, [42 CAR], 7F49 public key with domain, 5F20 CHR}, 5F37 inner signature}``."""
    point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    public = tlv.encode(0x7F49, _oid(TA_ECDSA_SHA256) + _curve_domain(key.curve) + tlv.encode(0x86, point))
    body = tlv.encode(
        0x7F4E,
        tlv.encode(0x5F29, b"\x00")
        + (tlv.encode(0x42, car.encode()) if car else b"")
        + public
        + tlv.encode(0x5F20, holder.encode()),
    )
    return tlv.encode(0x7F21, body + tlv.encode(0x5F37, sign_ta(key, TA_ECDSA_SHA256, body)))


def _csr(key: ec.EllipticCurvePrivateKey, terminal_id: str) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, terminal_id)])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM)


def request(cfg: Config, out: Path, *, renew: bool = False, country: str = "VN",
            eac_curve: ec.EllipticCurve | None = None) -> dict[str, Any]:  # fmt: skip
    """Create the missing keys (all but the event-signing key with ``renew``); write the public parts."""
    paths = EnrolPaths.from_config(cfg)
    terminal = cfg.terminal.terminal_id
    paths.state.mkdir(parents=True, exist_ok=True, mode=0o700)
    signing = load_signing_key(paths.signing_key)
    tls_key = _ec_key(paths.tls_key, ec.SECP256R1(), renew)
    eac_key = _ec_key(paths.eac_dir / "terminal.key", eac_curve or ec.BrainpoolP256R1(), renew)
    out.mkdir(parents=True, exist_ok=True)
    signing_pub = public_pem(signing.public_key())
    csr = _csr(tls_key, terminal)
    cvreq = cv_request(eac_key, chr_for(country, terminal))
    for name, data in ((f"{terminal}.pub", signing_pub), (f"{terminal}.csr", csr), (f"{terminal}.cvreq", cvreq)):
        write_atomic(out / name, data, 0o644)
    summary = {
        "facility_id": cfg.terminal.facility_id,
        "terminal_id": terminal,
        "out": str(out),
        "files": sorted(p.name for p in out.iterdir() if p.suffix in (".pub", ".csr", ".cvreq")),
        "signing_key_fingerprint": fingerprint(signing.public_key()),
        "holder": chr_for(country, terminal),
    }
    log.info("enrolment request for %s written to %s", terminal, out)
    return summary


def _load_cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise EnrolError(f"{path}: not a PEM certificate: {exc}") from exc


def _pin_changes(source: Path, target: Path, repin: bool) -> bool:
    """Whether pinning ``source`` at ``target`` changes it; EnrolError when a different pin is there and not
    ``repin`` (checked before anything is written)."""
    if not target.exists() or target.read_bytes() == source.read_bytes():
        return not target.exists()
    if not repin:
        raise EnrolError(f"{target} already pins a different key; compare the fingerprints and use --repin")
    return True


def install(cfg: Config, bundle: Path, *, repin: bool = False) -> dict[str, Any]:
    """Install what the hub signed; every certificate must be for this terminal's own keys."""
    paths = EnrolPaths.from_config(cfg)
    terminal = cfg.terminal.terminal_id
    if not bundle.is_dir():
        raise EnrolError(f"{bundle}: no such directory (the hub's enrolment answer)")
    if (bundle / "terminal.key").exists() or any(bundle.glob("*.key")):
        raise EnrolError(f"{bundle}: carries a private key; keys are made on the terminal, refuse this bundle")
    # TLS: our key, our name, the facility CA's signature
    cert_file, ca_file = bundle / f"{terminal}.crt", bundle / "ca.crt"
    cert, ca = _load_cert(cert_file), _load_cert(ca_file)
    if not paths.tls_key.exists():
        raise EnrolError(f"{paths.tls_key}: no TLS key; run `gate-agent enroll` (request) first")
    tls_key = serialization.load_pem_private_key(paths.tls_key.read_bytes(), None)
    if cert.public_key() != tls_key.public_key():
        raise EnrolError(f"{cert_file}: the certificate is not for this terminal's TLS key")
    names = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if names != [terminal]:
        raise EnrolError(f"{cert_file}: the certificate names {names}, not {terminal}")
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise EnrolError(f"{cert_file}: not issued by {ca_file.name} ({type(exc).__name__})") from exc
    # EAC: the chain must verify and end in a certificate for our EAC key
    cvcerts = sorted(bundle.glob("*.cvcert"))
    if not cvcerts:
        raise EnrolError(f"{bundle}: no CV certificates (*.cvcert)")
    staging = bundle / ".eac-check"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700)
    try:
        for file in cvcerts:
            shutil.copyfile(file, staging / file.name)
        shutil.copyfile(paths.eac_dir / "terminal.key", staging / "terminal.key")
        credentials = load_credentials(staging)
    except FileNotFoundError as exc:
        raise EnrolError(f"no EAC terminal key; run `gate-agent enroll` (request) first: {exc}") from exc
    except CvcError as exc:
        raise EnrolError(f"the CV certificates do not fit this terminal: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    # pins
    try:
        hub_key = load_public_key(bundle / HUB_PIN)
    except HubKeyError as exc:
        raise EnrolError(str(exc)) from exc
    ml_root = _load_cert(bundle / ML_ROOT_PIN)
    hub_changed = _pin_changes(bundle / HUB_PIN, paths.hub_pin, repin)
    root_changed = _pin_changes(bundle / ML_ROOT_PIN, paths.ml_root, repin)
    # everything checked: write
    for source, target in ((cert_file, paths.tls_cert), (ca_file, paths.tls_ca)):
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, source.read_bytes(), 0o644)
    for old in paths.eac_dir.glob("*.cvcert"):
        if old.name not in {f.name for f in cvcerts}:
            old.unlink()
    for file in cvcerts:
        write_atomic(paths.eac_dir / file.name, file.read_bytes(), 0o644)
    for changed, name, pin in ((hub_changed, HUB_PIN, paths.hub_pin), (root_changed, ML_ROOT_PIN, paths.ml_root)):
        if changed:
            pin.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(pin, (bundle / name).read_bytes(), 0o644)
    return {
        "terminal_id": terminal,
        "tls_certificate": str(paths.tls_cert),
        "tls_valid_until": cert.not_valid_after_utc.isoformat(),
        "eac_terminal": credentials.terminal.chr,
        "eac_valid_until": credentials.terminal.expiration.isoformat(),
        "hub_key_fingerprint": fingerprint(hub_key),
        "hub_key_pinned": "new" if hub_changed else "unchanged",
        "ml_root": ml_root.subject.rfc4514_string(),
        "ml_root_fingerprint": grouped_sha256(ml_root.public_bytes(serialization.Encoding.DER)),
        "ml_root_pinned": "new" if root_changed else "unchanged",
        "installed": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def signing_public_key(cfg: Config) -> ed25519.Ed25519PublicKey:
    return load_signing_key(EnrolPaths.from_config(cfg).signing_key).public_key()
