"""MRZ parsing against the ICAO 9303 Part 4/5 specimens and the simulator's cards."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.card.errors import InputError, MrzError
from agent.card.keys import MrzKey, check_digit
from agent.card.mrz import NO_DATE, date_from_yymmdd, holder_from_mrz, parse_mrz, yymmdd_from_date
from sim.population import make_population

TD3 = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO7408122F1204159ZE184226B<<<<<10"
TD1 = "I<UTOD231458907<<<<<<<<<<<<<<<\n7408122F1204159UTO<<<<<<<<<<<6\nERIKSSON<<ANNA<MARIA<<<<<<<<<<"
TD1_LONG = "I<UTOD23145890<7349<<<<<<<<<<<\n3407127M9507122UTO<<<<<<<<<<<2\nSTEVENSON<<PETER<JOHN<<<<<<<<<"


def test_check_digit_examples() -> None:
    # ICAO 9303 Part 3, 4.9 worked example: 520727 -> 3; fillers count as 0.
    assert check_digit("520727") == "3"
    assert check_digit("L898902C<") == "3"
    assert check_digit("<<<<<<") == "0"


def test_td3_specimen() -> None:
    mrz = parse_mrz(TD3)
    assert (mrz.format, mrz.document_code, mrz.issuing_state) == ("TD3", "P", "UTO")
    assert (mrz.document_number, mrz.birth, mrz.expiry, mrz.sex) == ("L898902C3", "740812", "120415", "F")
    assert (mrz.surname, mrz.given_names, mrz.nationality) == ("ERIKSSON", "ANNA MARIA", "UTO")
    assert mrz.optional_data == "ZE184226B"


def test_td1_specimen() -> None:
    mrz = parse_mrz(TD1)
    assert (mrz.format, mrz.document_code, mrz.document_number) == ("TD1", "I", "D23145890")
    assert (mrz.birth, mrz.expiry, mrz.surname, mrz.given_names) == ("740812", "120415", "ERIKSSON", "ANNA MARIA")


def test_td1_long_document_number_continues_in_optional_data() -> None:
    mrz = parse_mrz(TD1_LONG)
    assert mrz.document_number == "D23145890734"
    assert mrz.key.mrz_information == "D23145890734" + "9" + "340712" + "7" + "950712" + "2"


def test_bac_worked_example_mrz_information() -> None:
    # ICAO 9303-11 Appendix D.2
    assert MrzKey("L898902C", "690806", "940623").mrz_information == "L898902C<369080619406236"


def test_scanner_formats_are_tolerated() -> None:
    one_line = TD1.replace("\n", "")
    assert parse_mrz(one_line) == parse_mrz(TD1)
    assert parse_mrz("  " + TD1.lower().replace("\n", "\r\n") + "\r\n") == parse_mrz(TD1)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (TD3.replace("L898902C36", "L898902C37"), "document_number"),
        (TD3.replace("7408122F", "7408123F"), "birth"),
        (TD3.replace("1204159ZE", "1204158ZE"), "expiry"),
        (TD3.replace("<<<<<10", "<<<<<20"), "personal_number"),
        (TD3.replace("<<<<<10", "<<<<<11"), "composite"),
        (TD1.replace("7408122F", "7413122F"), "birth"),
        (TD1.replace("F1204159", "Q1204159"), "sex"),
        (TD1.replace("<<<<<<6\n", "<<<<<<5\n"), "composite"),
        (TD1[:-1], "format"),
        (TD1.replace("ERIKSSON", "ERIKSSÖN"), "line3"),
    ],
)
def test_bad_fields_are_named(text: str, field: str) -> None:
    with pytest.raises(MrzError) as err:
        parse_mrz(text)
    assert err.value.field == field
    assert field.split("_")[0] in str(err.value) or field.startswith("line") or field == "format"


def test_simulated_cards_parse_with_the_keys_the_simulator_announces() -> None:
    today = dt.date(2026, 11, 22)
    for person in make_population(300, seed=7, today=today, min_age=14, max_age=95):
        mrz = parse_mrz("\n".join(person.td1()))
        assert mrz.document_number == person.id_number[3:]
        assert mrz.optional_data == person.id_number
        assert (mrz.birth, mrz.expiry) == (person.birth_yymmdd, person.expiry_yymmdd)
        assert parse_mrz("\n".join(person.td3())).document_number == person.passport_number


def test_mrz_dates_convert_both_ways_with_the_century_guessed_by_direction() -> None:
    today = dt.date(2026, 11, 22)
    assert yymmdd_from_date(dt.date(1974, 8, 12)) == "740812" and yymmdd_from_date(None) == NO_DATE
    assert date_from_yymmdd("740812", future=False, today=today) == dt.date(1974, 8, 12)
    assert date_from_yymmdd("260101", future=False, today=today) == dt.date(2026, 1, 1)
    assert date_from_yymmdd("300101", future=False, today=today) == dt.date(1930, 1, 1)  # a birth is never ahead
    assert date_from_yymmdd("300101", future=True, today=today) == dt.date(2030, 1, 1)  # an expiry may be
    assert date_from_yymmdd("760101", future=True, today=today) == dt.date(2076, 1, 1)
    assert date_from_yymmdd("770101", future=True, today=today) == dt.date(1977, 1, 1)
    for empty in (NO_DATE, "741312", "7408", "74O812"):
        assert date_from_yymmdd(empty, future=True, today=today) is None


def test_holder_of_the_icao_td1_specimen_is_its_document_number() -> None:
    holder = holder_from_mrz(parse_mrz(TD1), today=dt.date(2026, 11, 22))
    assert (holder.id_number, holder.full_name, holder.sex) == ("D23145890", "ERIKSSON ANNA MARIA", "F")
    assert (holder.birth, holder.expiry) == (dt.date(1974, 8, 12), dt.date(2012, 4, 15))
    assert "ERIKSSON" not in repr(holder) and "D23145890" not in repr(holder)


def test_holder_of_a_cccd_is_the_12_digit_id_number_from_the_optional_data() -> None:
    today = dt.date(2026, 11, 22)
    for person in make_population(100, seed=11, today=today, min_age=14, max_age=95):
        holder = holder_from_mrz(parse_mrz("\n".join(person.td1())), today=today)
        assert holder.id_number == person.id_number
        assert (holder.birth, holder.expiry, holder.sex) == (person.birth, person.expiry, person.sex)


@given(st.text(max_size=120))
def test_parser_never_crashes(text: str) -> None:
    try:
        parse_mrz(text)
    except InputError:
        pass


def test_personal_fields_stay_out_of_repr() -> None:
    mrz = parse_mrz(TD1)
    assert "D23145890" not in repr(mrz) and "740812" not in repr(mrz)
    assert "740812" not in repr(mrz.key) and "740812" not in str(mrz.key)
