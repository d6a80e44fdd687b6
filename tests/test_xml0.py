"""QĐ 4750 XML0 rows: made from stored check-in events, validated field by field, written and read back."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from sim.hub import xml0

PERSON = {"id_number": "001090012345", "full_name": "Nguyễn Văn An", "birth": "1990-05-17", "sex": "M"}
RECORD = {"card_number": "GD4010123456789", "facility_code": "01001", "valid_from": "2026-01-01",
          "valid_to": "2026-12-31"}  # fmt: skip
WALL = dt.datetime(2026, 11, 30, 1, 5, tzinfo=dt.UTC).timestamp()  # 08:05 in Vietnam


def event(outcome: str = "admitted", card: str | None = "GD4010123456789", number: str | None = "001090012345",
          kind: str = "checkin") -> dict[str, Any]:  # fmt: skip
    elig: dict[str, Any] = {"source": "online", "fresh": True}
    if card:
        elig["card_number"] = card
    return {"id": "6f1c2d3e-0000-4000-8000-000000000001", "type": kind, "time": {"wall": WALL},
            "body": {"id_number": number, "outcome": outcome, "eligibility": elig}}  # fmt: skip


def test_a_row_has_every_field_in_its_format() -> None:
    row = xml0.row_for(event(), 1, PERSON, RECORD, "01001")
    assert row is not None
    xml0.validate_row(row)
    assert list(row) == list(xml0.NAMES)
    assert (row["NGAY_SINH"], row["NGAY_VAO"], row["GIOI_TINH"]) == ("199005170000", "202611300805", "1")
    assert (row["GT_THE_TU"], row["GT_THE_DEN"], row["MA_DOITUONG_KCB"], row["MA_LOAI_KCB"]) == (
        "20260101", "20261231", "1", "01")  # fmt: skip
    other = xml0.row_for(event(), 2, dict(PERSON, sex=None), dict(RECORD, facility_code="79001"), "01001")
    assert other is not None and other["MA_DOITUONG_KCB"] == "2" and other["GIOI_TINH"] == "3"
    uninsured = xml0.row_for(event("admitted_provisional", card=None), 3, PERSON, None, "01001")
    assert uninsured is not None and uninsured["MA_THE_BHYT"] == "" and uninsured["MA_DOITUONG_KCB"] == "3"
    xml0.validate_row(uninsured)


def test_no_row_for_who_did_not_come_in_or_has_no_identity() -> None:
    assert xml0.row_for(event("refer_desk"), 1, PERSON, RECORD, "01001") is None
    assert xml0.row_for(event(number=None), 1, PERSON, RECORD, "01001") is None
    assert xml0.row_for(event(kind="discrepancy"), 1, PERSON, RECORD, "01001") is None
    assert xml0.row_for(event(), 1, None, RECORD, "01001") is None


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("MA_LK", "", "required"),
        ("STT", "0", "format"),
        ("STT", "x", "number"),
        ("HO_TEN", "A" * 256, "longer"),
        ("SO_CCCD", "12345", "format"),
        ("NGAY_SINH", "199005171230", "format"),  # the time of birth is 0000
        ("NGAY_SINH", "19900517", "format"),
        ("NGAY_SINH", "199000000000", None),  # an unknown month and day are 00: valid
        ("GIOI_TINH", "4", "format"),
        ("MA_THE_BHYT", "GD401012345678", "format"),
        ("MA_DKBD", "0100", "format"),
        ("GT_THE_TU", "2026-01-01", "longer"),
        ("GT_THE_DEN", "20261331", "format"),
        ("GT_THE_TU", "20270101", "after"),
        ("NGAY_VAO", "202611302405", "format"),
        ("NGAY_VAO", "", "required"),
        ("MA_LOAI_KCB", "10", "format"),
        ("MA_CSKCB", "1001", "format"),
        ("MA_DOITUONG_KCB", "12345", "longer"),
    ],
)
def test_the_validator_names_the_field(field: str, value: str, message: str | None) -> None:
    row = xml0.row_for(event(), 1, PERSON, RECORD, "01001")
    assert row is not None
    row[field] = value
    if message is None:
        xml0.validate_row(row)
        return
    with pytest.raises(xml0.Xml0Error, match=f"{field}: .*{message}"):
        xml0.validate_row(row)


def test_card_and_validity_go_together_and_unknown_fields_are_refused() -> None:
    row = xml0.row_for(event(), 1, PERSON, RECORD, "01001")
    assert row is not None
    with pytest.raises(xml0.Xml0Error, match="MA_THE_BHYT"):
        xml0.validate_row(dict(row, GT_THE_DEN=""))
    with pytest.raises(xml0.Xml0Error, match="unknown field"):
        xml0.validate_row(dict(row, EXTRA="1"))
    with pytest.raises(xml0.Xml0Error, match="HO_TEN: missing"):
        xml0.validate_row({k: v for k, v in row.items() if k != "HO_TEN"})


def test_a_days_file_round_trips_and_refuses_a_bad_row(tmp_path: Path) -> None:
    rows = [xml0.row_for(event(), i, PERSON, RECORD, "01001") for i in (1, 2)]
    good = [r for r in rows if r is not None]
    assert xml0.export_day(good, tmp_path / "day.xml") == 2
    back = xml0.read_file(tmp_path / "day.xml")
    assert back == good and "Nguyễn Văn An" in (tmp_path / "day.xml").read_text(encoding="utf-8")
    with pytest.raises(xml0.Xml0Error, match="NGAY_VAO"):
        xml0.export_day([dict(good[0], NGAY_VAO="2026")], tmp_path / "bad.xml")
