"""A PKI directory: one issuer PKI and EAC PKI kept on disk, made on first use and reused after.

Layout::

    issuer/pki.json            format, seed, document signer algorithm
    issuer/csca.key csca.pem csca.crl
    issuer/<signer>.key .pem   signer, revoked-signer, expired-signer, foreign-signer
    trust/                     the gate's anchors: csca.pem, csca.crl, masterlist.ml
    eac/cvca.key dv.key is.key the EAC PKI's keys (terminal certificates are made from them)

Written by ``python -m sim pki --card``, ``python -m sim card --pki DIR`` (first use) or
:func:`open_pki_directory`; a gate pointed at ``trust/`` keeps verifying every card built
from the directory, whatever the seed or the simulator's version.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from sim.card.eac import EacPki, eac_pki, load_eac_keys, save_eac_keys
from sim.card.pki import IssuerPki, PkiDirectoryError, issuer_pki, load_issuer_pki

log = logging.getLogger(__name__)


@dataclass
class PkiDirectory:
    path: Path
    issuer: IssuerPki
    eac_keys: dict[str, ec.EllipticCurvePrivateKey] = field(repr=False)
    created: bool

    @property
    def trust(self) -> Path:
        """The gate's Passive Authentication anchors."""
        return self.path / "trust"

    def eac(self, today: dt.date | None = None, **options: Any) -> EacPki:
        """The EAC PKI on the directory's keys (terminal certificates dated from ``today``)."""
        return eac_pki(self.issuer.seed, today=today, keys=self.eac_keys, **options)


def open_pki_directory(directory: Path | str, seed: int = 0, ds_algorithm: str = "ecdsa") -> PkiDirectory:
    """The PKI kept in ``directory``, or a new one of ``seed`` written there when it has none yet."""
    path = Path(directory)
    if (path / "issuer" / "pki.json").exists():
        issuer = load_issuer_pki(path)
        if issuer.seed != seed or issuer.ds_algorithm != ds_algorithm:
            log.info("PKI directory %s: reusing seed %d (%s)", path, issuer.seed, issuer.ds_algorithm)
        return PkiDirectory(path, issuer, load_eac_keys(path), created=False)
    if (path / "issuer").exists() or (path / "eac").exists():
        raise PkiDirectoryError(f"{path}: has issuer/ or eac/ but no issuer/pki.json (a partial PKI directory?)")
    issuer = issuer_pki(seed, ds_algorithm)
    issuer.save(path)
    save_eac_keys(path, seed)
    return PkiDirectory(path, issuer, load_eac_keys(path), created=True)
