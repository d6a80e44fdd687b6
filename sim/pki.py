"""A development PKI for a facility's broker: CA, broker, hub and terminal certificates, and the broker's ACL.

``python -m sim pki --out DIR --facility 01001 --terminals gate-1,gate-2`` writes::

    ca.crt ca.key                      the facility CA (keep ca.key off the terminals)
    broker.crt broker.key              for 127.0.0.1 / localhost (or --broker-host)
    hub.crt hub.key                    client certificate of the hub (CN hub-<facility>)
    <terminal>.crt <terminal>.key      one client certificate per terminal (CN = terminal id)
    acl                                the ACL of docs/deploy/mosquitto, for this facility
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ACL_TEMPLATE = Path(__file__).resolve().parent.parent / "docs" / "deploy" / "mosquitto" / "acl.template"


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))  # fmt: skip
    path.chmod(0o600)


def _cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Certificate | None,
          issuer_key: ec.EllipticCurvePrivateKey, *, ca: bool = False, server: list[str] | None = None,
          days: int = 365) -> x509.Certificate:  # fmt: skip
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if server:
        names: list[x509.GeneralName] = []
        for host in server:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def acl_for(facility: str) -> str:
    return ACL_TEMPLATE.read_text().replace("{facility}", facility)


def make_pki(out: Path, facility: str, terminals: list[str], broker_hosts: list[str] | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert(f"gate-agent facility {facility} CA", ca_key, None, ca_key, ca=True, days=3650)
    (out / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    _write_key(out / "ca.key", ca_key)
    for name, server in [("broker", broker_hosts or ["127.0.0.1", "localhost"]), (f"hub-{facility}", None),
                         *((t, None) for t in terminals)]:  # fmt: skip
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(name, key, ca, ca_key, server=server)
        stem = "hub" if name == f"hub-{facility}" else name
        (out / f"{stem}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(out / f"{stem}.key", key)
    (out / "acl").write_text(acl_for(facility))
