"""Reproducible issuer keys and signatures: the same seed gives the same PKI, byte for byte.

* :class:`HmacDrbg` is HMAC_DRBG with SHA-256 (NIST SP 800-90A rev. 1, 10.1.2), instantiated
  from the seed and a label that names the key ("csca", "eac:cvca", ...).
* EC private keys are ``d = c mod (n - 1) + 1`` for ``c`` drawn with 64 extra bits (FIPS 186-5
  A.2.1, "extra random bits"), so the bias is negligible.
* RSA keys are found by drawing odd candidates from the DRBG and testing them with
  Miller-Rabin rounds whose bases also come from the DRBG (FIPS 186-5 B.3.3 in spirit).
* ECDSA signatures use RFC 6979 deterministic nonces (python-ecdsa), so certificates, CRLs and
  signed objects do not change from one run to the next.

This is for a simulator's test PKI only: a seed is not a secret.
"""

from __future__ import annotations

import hashlib
import hmac

from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from ecdsa import SigningKey, curves
from ecdsa.util import sigencode_der

_ECDSA_CURVES = {
    "secp256r1": curves.NIST256p,
    "secp384r1": curves.NIST384p,
    "brainpoolP256r1": curves.BRAINPOOLP256r1,
    "brainpoolP384r1": curves.BRAINPOOLP384r1,
}
_SMALL_PRIMES = [p for p in range(3, 2000) if all(p % q for q in range(2, int(p**0.5) + 1))]


class HmacDrbg:
    """HMAC_DRBG (SP 800-90A 10.1.2) over SHA-256, without reseeding (a test PKI draws a few kilobytes)."""

    def __init__(self, entropy: bytes, nonce: bytes = b"", personalization: bytes = b"") -> None:
        self.key = bytes(32)
        self.value = b"\x01" * 32
        self._update(entropy + nonce + personalization)

    def _hmac(self, key: bytes, data: bytes) -> bytes:
        return hmac.new(key, data, hashlib.sha256).digest()

    def _update(self, provided: bytes) -> None:
        self.key = self._hmac(self.key, self.value + b"\x00" + provided)
        self.value = self._hmac(self.key, self.value)
        if provided:
            self.key = self._hmac(self.key, self.value + b"\x01" + provided)
            self.value = self._hmac(self.key, self.value)

    def generate(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            self.value = self._hmac(self.key, self.value)
            out += self.value
        self._update(b"")
        return out[:n]


def drbg(seed: int, label: str) -> HmacDrbg:
    """The DRBG of one key: entropy input = the seed, nonce = the label."""
    return HmacDrbg(b"gate-agent simulated pki:" + str(seed).encode(), label.encode())


def ec_key(seed: int, label: str, curve: ec.EllipticCurve) -> ec.EllipticCurvePrivateKey:
    order = _ECDSA_CURVES[curve.name].order
    c = int.from_bytes(drbg(seed, label).generate((order.bit_length() + 64 + 7) // 8), "big")
    return ec.derive_private_key(c % (order - 1) + 1, curve)


def _probably_prime(n: int, rng: HmacDrbg, rounds: int = 40) -> bool:
    if any(n % p == 0 for p in _SMALL_PRIMES):
        return n in _SMALL_PRIMES
    d, r = n - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    for _ in range(rounds):
        a = int.from_bytes(rng.generate(len(n.to_bytes((n.bit_length() + 7) // 8, "big"))), "big") % (n - 3) + 2
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(rng: HmacDrbg, bits: int, e: int) -> int:
    while True:
        candidate = int.from_bytes(rng.generate(bits // 8), "big") | (0b11 << (bits - 2)) | 1  # top two bits set
        if candidate % e != 1 and _probably_prime(candidate, rng):
            return candidate


def rsa_key(seed: int, label: str, bits: int = 2048, e: int = 65537) -> rsa.RSAPrivateKey:
    rng = drbg(seed, label)
    while True:
        p, q = _prime(rng, bits // 2, e), _prime(rng, bits // 2, e)
        if p != q:
            break
    p, q = max(p, q), min(p, q)
    d = pow(e, -1, (p - 1) * (q - 1))
    numbers = rsa.RSAPrivateNumbers(
        p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q),
        rsa.RSAPublicNumbers(e, p * q),
    )  # fmt: skip
    return numbers.private_key()


def ecdsa_sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """An ECDSA-SHA-256 signature (DER) with the RFC 6979 nonce: the same input, the same bytes."""
    curve = _ECDSA_CURVES[key.curve.name]
    signing = SigningKey.from_secret_exponent(key.private_numbers().private_value, curve, hashfunc=hashlib.sha256)
    return bytes(signing.sign_deterministic(data, hashfunc=hashlib.sha256, sigencode=sigencode_der))


def resign_certificate(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    """``cert`` with its ECDSA signature made again deterministically (same TBS, same algorithm)."""
    parsed = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    parsed["signature_value"] = ecdsa_sign(key, parsed["tbs_certificate"].dump())
    return x509.load_der_x509_certificate(parsed.dump(force=True))


def resign_crl(crl: x509.CertificateRevocationList, key: ec.EllipticCurvePrivateKey) -> x509.CertificateRevocationList:
    parsed = asn1_crl.CertificateList.load(crl.public_bytes(serialization.Encoding.DER))
    parsed["signature"] = ecdsa_sign(key, parsed["tbs_cert_list"].dump())
    return x509.load_der_x509_crl(parsed.dump(force=True))
