"""LDS files (ICAO 9303-10) built by tests/ldsgen.py: file table, EF.COM, DG1, DG2, DG13, DG15; fuzzing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.card import lds
from agent.card.errors import CardError, ParseError
from tests import ldsgen as g


def test_file_table_matches_9303_10() -> None:
    assert lds.FILES["cardaccess"] == lds.LdsFileSpec("cardaccess", 0x011C, 0x1C, 0x31)
    assert (lds.FILES["com"].fid, lds.FILES["com"].sfi, lds.FILES["com"].tag) == (0x011E, 0x1E, 0x60)
    assert (lds.FILES["sod"].fid, lds.FILES["sod"].sfi, lds.FILES["sod"].tag) == (0x011D, 0x1D, 0x77)
    tags = [0x61, 0x75, 0x63, 0x76, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x6B, 0x6C, 0x6D, 0x6E, 0x6F, 0x70]
    for n, tag in enumerate(tags, 1):
        assert lds.FILES[f"dg{n}"] == lds.LdsFileSpec(f"dg{n}", 0x0100 + n, n, tag)
    assert lds.file_spec("DG13").tag == 0x6D
    with pytest.raises(ParseError):
        lds.file_spec("dg17")


def test_com_lists_the_cccd_groups() -> None:
    com = lds.parse_com(g.com())
    assert com.lds_version == "0107" and com.unicode_version == "040000"
    assert com.files == ("dg1", "dg2", "dg3", "dg13", "dg14", "dg15")


def test_com_with_unknown_tag_or_without_list_fails() -> None:
    with pytest.raises(ParseError, match="unknown data group tag 99"):
        lds.parse_com(g.com(bytes([0x61, 0x99])))
    with pytest.raises(ParseError, match="5C"):
        lds.parse_com(g.t(0x60, g.t(0x5F01, b"0107")))


def test_dg1_td1_cccd_and_td3_passport() -> None:
    mrz = lds.parse_dg1(g.dg1(g.td1(id_number="079203000001"))).mrz
    assert (mrz.format, mrz.document_number, mrz.optional_data[:12]) == ("TD1", "203000001", "079203000001")
    d = lds.parse_dg1(g.dg1(g.td3())).as_dict()
    assert (d["document_code"], d["document_number"], d["surname"], d["given_names"]) == ("P", "C01234567", "TRAN",
                                                                                          "THI MAI")  # fmt: skip


def test_dg1_with_bad_check_digit_is_a_parse_error() -> None:
    text = g.td1()
    broken = text[:14] + ("0" if text[14] != "0" else "1") + text[15:]
    with pytest.raises(ParseError, match="DG1"):
        lds.parse_dg1(g.dg1(broken))


def test_dg13_every_field_by_number() -> None:
    dg = lds.parse_dg13(g.dg13(g.DG13_SAMPLE))
    assert dg.id_number == "001090012345"
    assert dg.full_name == "Nguyễn Văn An"
    assert dg.birth == dt.date(1990, 1, 1)
    assert dg.sex == "M"
    assert (dg.nationality, dg.ethnicity, dg.religion) == ("Việt Nam", "Kinh", "Không")
    assert dg.hometown == g.DG13_SAMPLE[8] and dg.residence == g.DG13_SAMPLE[9] and dg.marks == g.DG13_SAMPLE[10]
    assert (dg.issued, dg.expiry, dg.no_expiry) == (dt.date(2021, 8, 15), dt.date(2030, 1, 1), False)
    assert (dg.father, dg.mother, dg.spouse, dg.old_id) == ("Nguyễn Văn Bình", "Trần Thị Cúc", "Lê Thị Dung",
                                                             "012345678")  # fmt: skip
    assert dg.missing == ()
    out = dg.as_dict()
    assert out["full_name"] == "Nguyễn Văn An" and out["father"] == "Nguyễn Văn Bình" and out["missing"] == []


def test_dg13_parents_as_plain_strings_too() -> None:
    dg = lds.parse_dg13(g.dg13(g.DG13_SAMPLE, nested_pairs=False))
    assert (dg.father, dg.mother) == ("Nguyễn Văn Bình", "Trần Thị Cúc")


def test_dg13_missing_fields_are_reported_not_errors() -> None:
    fields = {k: v for k, v in g.DG13_SAMPLE.items() if k not in (7, 10, 13, 14, 15)}
    fields = {12: fields.pop(12), **fields}  # order on the card does not matter
    dg = lds.parse_dg13(g.dg13(fields))
    assert dg.missing == ("religion", "marks", "parents", "spouse", "old_id")
    assert dg.religion is None and dg.spouse is None and dg.father is None and dg.mother is None
    assert dg.expiry == dt.date(2030, 1, 1)
    assert lds.parse_dg13(g.dg13({})).missing == tuple(n for k, n in lds.DG13_FIELDS.items() if k != 16)


def test_dg13_without_expiry_date_over_60() -> None:
    dg = lds.parse_dg13(g.dg13({**g.DG13_SAMPLE, 12: "Không thời hạn", 4: "Nữ"}))
    assert dg.expiry is None and dg.no_expiry and dg.sex == "F"
    assert "expiry" not in dg.missing


def test_dg13_string_not_utf8_is_a_parse_error() -> None:
    bad = g.t(0x6D, g.t(0x30, g.t(0x30, g.der_int(2), g.t(0x0C, b"\xc3\x28"))))
    with pytest.raises(ParseError, match="DG13"):
        lds.parse_dg13(bad)


LETTERS = "aăâbcdđeêghiklmnoôơpqrstuưvxyàảãáạằẳẵắặầẩẫấậèẻẽéẹềểễếệìỉĩíịòỏõóọồổỗốộờởỡớợùủũúụừửữứựỳỷỹýỵ"
vietnamese = st.text(alphabet=LETTERS + " ÁĐƯ/0123456789", min_size=1, max_size=40)


@given(st.dictionaries(st.integers(1, 15).filter(lambda n: n != 13), vietnamese, max_size=14))
def test_dg13_round_trip(fields: dict[int, str]) -> None:
    dg = lds.parse_dg13(g.dg13(fields))
    assert {n: v[0] for n, v in dg.fields.items()} == fields
    assert set(dg.missing) == {name for n, name in lds.DG13_FIELDS.items() if n not in fields and n != 16}


def test_dg2_jpeg_face() -> None:
    image = g.fake_jpeg(20000)
    (face,) = lds.parse_dg2(g.dg2([(image, 480, 640, 0)])).faces
    assert (face.format, face.width, face.height, face.data) == ("jpeg", 480, 640, image)
    assert face.as_dict() == {"format": "jpeg", "width": 480, "height": 640, "bytes": 20000}


def test_dg2_jpeg2000_two_faces_with_landmarks() -> None:
    jp2 = b"\x00\x00\x00\x0cjP  \r\n\x87\n" + bytes(300)
    data = g.dg2([(jp2, 300, 400, 1), (g.fake_jpeg(), 200, 250, 0)])
    faces = lds.parse_dg2(data).faces
    assert [(f.format, f.width, f.height) for f in faces] == [("jpeg2000", 300, 400), ("jpeg", 200, 250)]
    rec = g.face_record(g.fake_jpeg(100), 10, 20, landmarks=3)
    data = g.t(0x75, g.t(0x7F61, g.t(0x02, b"\x01"), g.t(0x7F60, g.t(0x5F2E, rec))))
    (face,) = lds.parse_dg2(data).faces
    assert (face.width, face.height, len(face.data)) == (10, 20, 100)


def test_dg2_not_a_facial_record_fails() -> None:
    data = g.t(0x75, g.t(0x7F61, g.t(0x02, b"\x01"), g.t(0x7F60, g.t(0x5F2E, b"XYZ\x00" + bytes(40)))))
    with pytest.raises(ParseError, match="19794-5"):
        lds.parse_dg2(data)


@pytest.mark.parametrize("kind", ["rsa", "ecdsa", "brainpool"])
def test_dg15_public_key(kind: str) -> None:
    key = g.new_key(kind)
    loaded = lds.dg15_public_key(g.dg15(key))
    assert loaded.public_numbers() == key.public_key().public_numbers()  # type: ignore[union-attr]
    assert isinstance(loaded, rsa.RSAPublicKey if kind == "rsa" else ec.EllipticCurvePublicKey)


def test_dg15_with_explicit_ec_parameters() -> None:
    key = ec.generate_private_key(ec.BrainpoolP256R1())
    data = g.t(0x6F, g.explicit_spki(key.public_key()))
    loaded = lds.dg15_public_key(data)
    assert isinstance(loaded, ec.EllipticCurvePublicKey) and loaded.curve.name == "brainpoolP256r1"
    assert loaded.public_numbers() == key.public_key().public_numbers()


def test_dg15_unloadable_key_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="DG15"):
        lds.dg15_public_key(g.t(0x6F, g.t(0x30, g.t(0x30, g.oid("1.2.3")), g.t(0x03, b"\x00\x01"))))


PARSERS: dict[str, tuple[Callable[[bytes], Any], bytes]] = {
    "com": (lds.parse_com, g.com()),
    "dg1": (lds.parse_dg1, g.dg1(g.td1())),
    "dg2": (lds.parse_dg2, g.dg2([(g.fake_jpeg(300), 48, 64, 0)])),
    "dg13": (lds.parse_dg13, g.dg13(g.DG13_SAMPLE)),
    "dg15": (lds.dg15_public_key, g.dg15(g.new_key("ecdsa"))),
}


@pytest.mark.parametrize("name", sorted(PARSERS))
@given(data=st.binary(max_size=300))
def test_any_bytes_give_a_parse_error_or_a_result(name: str, data: bytes) -> None:
    parse, good = PARSERS[name]
    for candidate in (data, good[:2] + data):  # also behind the right outer tag
        try:
            parse(candidate)
        except ParseError:
            pass


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=150)
@given(data=st.data())
def test_damaged_files_give_a_parse_error_or_a_result(name: str, data: st.DataObject) -> None:
    parse, good = PARSERS[name]
    pos = data.draw(st.integers(0, len(good) - 1))
    damaged = good[:pos] + data.draw(st.binary(min_size=1, max_size=4)) + good[pos + data.draw(st.integers(0, 4)) :]
    try:
        parse(damaged)
    except CardError:
        pass
