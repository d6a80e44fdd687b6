"""The outcome of one chip authenticity check (Active, Chip or Terminal Authentication)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class AuthResult:
    """``valid`` True (passed), False (failed: the chip is not what it claims) or None (not performed).

    ``failed_step`` names the check that failed or prevented the protocol; ``detail`` says why in words.
    """

    valid: bool | None
    failed_step: str | None = None
    detail: str = ""
    algorithm: str | None = None

    @classmethod
    def passed(cls, algorithm: str, detail: str = "") -> AuthResult:
        return cls(True, None, detail, algorithm)

    @classmethod
    def failed(cls, step: str, detail: str, algorithm: str | None = None) -> AuthResult:
        return cls(False, step, detail, algorithm)

    @classmethod
    def skipped(cls, step: str, detail: str, algorithm: str | None = None) -> AuthResult:
        return cls(None, step, detail, algorithm)

    def as_dict(self) -> dict[str, Any]:
        return {"valid": self.valid, "failed_step": self.failed_step, "detail": self.detail,
                "algorithm": self.algorithm}  # fmt: skip
