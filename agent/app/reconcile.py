"""Record reconciliation: the chip's identity against the insurance record.

The chip is the national population data (signed by the state, checked by
Passive Authentication); the insurance record is what the insurer holds.  Where
they disagree, the insurer's record is the one to clean, so the discrepancy is
reported to the hub with the chip's values for the fields that differ — the same
mismatches the authorities count province by province.  Only a chip-verified
identity is a reference: a typed ID number proves nothing about the name.
"""

from __future__ import annotations

import unicodedata

from agent.model import Discrepancy, Identity, InsuranceRecord


def normalise_name(name: str) -> str:
    """Compare names the way a clerk would: Unicode NFC, case and spacing ignored; diacritics kept.

    ``Nguyễn Văn An`` and ``NGUYỄN  VĂN AN`` are the same person; ``Nguyen Van An`` (diacritics
    lost, a common data-entry fault) is a discrepancy worth cleaning.
    """
    return " ".join(unicodedata.normalize("NFC", name).casefold().split())


def reconcile(chip: Identity, record: InsuranceRecord) -> list[Discrepancy]:
    """The fields where the insurance record disagrees with the chip; empty when they agree.

    A field the record leaves empty counts as a discrepancy too (the record lacks it);
    a field the chip did not provide cannot be compared and is skipped.
    """
    out: list[Discrepancy] = []
    if record.id_number != chip.id_number:
        out.append(Discrepancy("id_number", chip.id_number))
    if chip.full_name is not None and (
        record.full_name is None or normalise_name(record.full_name) != normalise_name(chip.full_name)
    ):
        out.append(Discrepancy("full_name", unicodedata.normalize("NFC", chip.full_name)))
    if chip.birth is not None and record.birth != chip.birth:
        out.append(Discrepancy("birth", chip.birth.isoformat()))
    if chip.sex is not None and record.sex != chip.sex:
        out.append(Discrepancy("sex", chip.sex))
    return out
