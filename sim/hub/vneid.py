"""The national identity service, as the hub reaches it: VNeID tokens of its own, and their verification.

The real VNeID QR payload and its signature scheme are not published; this simulator
makes tokens of its own so the gate's route can be tested end to end, and the gate
treats them as opaque, exactly as it must treat the real ones.  A token here is
``VNEIDSIM1.<payload>.<signature>`` (base64url without padding): the payload is JSON
claims (account ID number, name, birth date, sex, account level, expiry, token id,
device), the signature Ed25519 by the service's key.  The key is derived from a seed,
so a scanner simulator and a hub simulator started apart agree on it.

Variants the scanner can show (``python -m sim scanner``: ``vneid SEED VARIANT``):

* ``valid`` -- a level-2 account, the QR fresh (the app's QR lives a few minutes);
* ``expired`` -- the QR's validity is over;
* ``revoked`` -- a device the service's registry has revoked (lost phone);
* ``wrong-level`` -- a level-1 account (registered online, not identified in person);
* ``forged`` -- signed by another key (the service answers ``invalid``).

The service answers the hub's "citizen verification" with the status, the level,
a reference of its answer and, for a valid level-2 account, the verified identity.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from sim.population import Person, make_person

PREFIX = "VNEIDSIM1"
VARIANTS = ("valid", "expired", "revoked", "wrong-level", "forged")
QR_LIFETIME = 300  # seconds an app QR is valid in this simulator
DEFAULT_SEED = "national-identity-service"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class IdentityService:
    """Issues and verifies tokens; holds the registry of revoked devices."""

    def __init__(self, seed: str = DEFAULT_SEED) -> None:
        secret = hashlib.sha256(f"vneid-sim:{seed}".encode()).digest()
        self._secret = secret
        self._key = ed25519.Ed25519PrivateKey.from_private_bytes(secret)
        self.public_key = self._key.public_key()
        self.by_status: dict[str, int] = {}
        self.online = True  # False: the service does not answer (the hub says "unverified")
        self.unreachable: set[str] = set()  # accounts whose verification does not answer in time (a simulation)

    def _device(self, id_number: str, revoked: bool) -> str:
        tag = hmac.new(self._secret, f"{'revoked' if revoked else 'device'}:{id_number}".encode(), "sha256")
        return tag.hexdigest()[:16]

    def issue(self, person: Person, variant: str = "valid", now: float | None = None) -> str:
        """A token as the app's QR shows it."""
        if variant not in VARIANTS:
            raise ValueError(f"VNeID variant must be one of {', '.join(VARIANTS)}, not {variant!r}")
        now = time.time() if now is None else now
        claims = {
            "sub": person.id_number,
            "name": person.full_name,
            "birth": person.birth.isoformat(),
            "sex": person.sex,
            "lvl": 1 if variant == "wrong-level" else 2,
            "exp": int(now - 60 if variant == "expired" else now + QR_LIFETIME),
            "jti": uuid.uuid4().hex[:16],
            "dev": self._device(person.id_number, variant == "revoked"),
        }
        payload = json.dumps(claims, ensure_ascii=False, separators=(",", ":")).encode()
        signer = ed25519.Ed25519PrivateKey.generate() if variant == "forged" else self._key
        signed = f"{PREFIX}.{_b64(payload)}"
        return f"{signed}.{_b64(signer.sign(signed.encode()))}"

    def verify(self, token: str, now: float | None = None) -> dict[str, Any]:
        """The answer of "citizen verification": status, level, reference, identity (valid level 2 only)."""
        answer = self._verify(token, time.time() if now is None else now)
        answer["reference"] = f"vn-{uuid.uuid4().hex[:20]}"
        status = str(answer["status"])
        self.by_status[status] = self.by_status.get(status, 0) + 1
        return answer

    def _verify(self, token: str, now: float) -> dict[str, Any]:
        if not self.online:
            return {"status": "unverified"}
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != PREFIX or len(token) > 4096:
            return {"status": "invalid"}
        try:
            self.public_key.verify(_unb64(parts[2]), f"{parts[0]}.{parts[1]}".encode())
            claims = json.loads(_unb64(parts[1]))
        except (InvalidSignature, ValueError):
            return {"status": "invalid"}
        if not isinstance(claims, dict) or not isinstance(claims.get("sub"), str):
            return {"status": "invalid"}
        if claims["sub"] in self.unreachable:
            return {"status": "unverified"}
        level = claims.get("lvl")
        if not isinstance(claims.get("exp"), int) or claims["exp"] < now:
            return {"status": "expired", "level": level}
        if claims.get("dev") == self._device(claims["sub"], True):
            return {"status": "revoked", "level": level}
        if level != 2:
            return {"status": "wrong_level", "level": level}
        identity = {"id_number": claims["sub"], "full_name": claims.get("name"), "birth": claims.get("birth"),
                    "sex": claims.get("sex")}  # fmt: skip
        return {"status": "valid", "level": 2, "identity": identity}


def token_for_seed(seed: int, variant: str, service_seed: str = DEFAULT_SEED, today: dt.date | None = None) -> str:
    """The token of the person of ``seed`` (sim.population.make_person), as the scanner simulator shows it."""
    return IdentityService(service_seed).issue(make_person(seed, today), variant)
