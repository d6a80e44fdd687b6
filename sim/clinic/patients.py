"""Who arrives at a clinic gate: a seeded patient mix built on the official figures.

The figures (``sim/clinic/data/*.csv``, from the appendices of the Project 06 working
group's letter 1102/CV-TCTTKĐA of 24 Feb 2023) count, per province and participant
category, insured people whose record lacks an ID number and those whose ID number
does not match the population database.  We use them for what they say:

* the share of record problems that are *missing ID* versus *mismatch* in a province;
* the participant category of each problem record (pupils, pensioners, children under 6 ...);
* children under 6 as the category that mostly has no chip card and is checked in by
  the attendant (a lower-assurance check-in).

The overall rate of problem records among patients is a parameter (``problem_rate``):
the figures give counts, not the number of insured people they are a share of.

The adversarial corpus (``python -m sim clinic --attacks``, :func:`make_attack_patients`)
adds patients who try to pass a gate they should not: a copied chip, a borrowed card
with the finger withheld, a hostile chip; each is an insured person's card, so only the
gate's checks stand between the attacker and the clinic.  What the gate must show for
every kind is in one table, :data:`EXPECTED`.
"""

from __future__ import annotations

import csv
import datetime as dt
import enum
import random
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from sim.card.variants import ACCEPTED, CLONE_SUSPECTED, PASSIVE_AUTH_FAILED, READ_ERROR, variant
from sim.population import PROVINCES, Person, make_person

DATA = Path(__file__).resolve().parent / "data"
CATEGORIES = (
    "enterprise_employees",
    "civil_servants",
    "voluntary_social_insurance",
    "household_health_insurance",
    "pupils",
    "students",
    "pensioners",
    "children_under_6",
    "other",
)


class Kind(enum.StrEnum):
    INSURED = "insured"  # a clean record: admitted
    RECORD_MISMATCH = "record_mismatch"  # record's name/birth/sex differ from the chip: admitted + discrepancy
    RECORD_MISSING_ID = "record_missing_id"  # the insurer's record has no ID number: not found by ID
    UNINSURED = "uninsured"  # no record at all
    EXPIRED = "expired"  # insurance ended
    CHILD_NO_CARD = "child_no_card"  # under 6, no chip card: the attendant enters the ID number
    TAMPERED = "tampered"  # chip data altered after signing: passive authentication fails
    CLONED = "cloned"  # a genuine card's files on another chip: chip and active authentication fail
    BORROWED_CARD = "borrowed_card"  # someone else's genuine card (a relative's): the finger does not match
    # the adversarial corpus (``--attacks``)
    FINGER_WITHHELD = "finger_withheld"  # a borrowed genuine card with DG3, and no finger ever on the sensor
    CLONE_HIDING = "clone_hiding"  # a copy whose chip hides DG14 and DG15 (which its EF.SOD lists)
    HOSTILE_CHAINING = "hostile_chaining"  # a chip that answers every read with endless response chaining
    HOSTILE_OVERSIZE = "hostile_oversize"  # a chip whose files announce 64 KB and 16 MB and return filler
    NO_SFI = "no_sfi"  # a genuine card whose OS refuses reads by short file identifier: a control, admitted
    # the national systems: the gateway's codes and the VNeID route
    CHILD_TEMP_CARD = "child_temp_card"  # under 6, no chip card, insured on a temporary card only: gateway 130
    GATEWAY_OTHER = "gateway_other"  # the gateway answers a code records cannot show (army card, revoked ...)
    VNEID_VALID = "vneid_valid"  # shows the VNeID app (level 2), no card
    VNEID_EXPIRED = "vneid_expired"  # the app's QR shown after its validity
    VNEID_WRONG_LEVEL = "vneid_wrong_level"  # a level-1 account
    VNEID_OFFLINE = "vneid_offline"  # the national identity service does not answer in time


#: the VNeID kinds and the variant of the token the patient shows (sim/hub/vneid.py)
VNEID_VARIANT = {Kind.VNEID_VALID: "valid", Kind.VNEID_EXPIRED: "expired", Kind.VNEID_WRONG_LEVEL: "wrong-level",
                 Kind.VNEID_OFFLINE: "valid"}  # fmt: skip
#: codes of GATEWAY_OTHER patients, drawn in these proportions (our choice: the gateway publishes no rates)
OTHER_CODES = (("001", 2), ("002", 1), ("003", 3), ("004", 3), ("051", 1), ("052", 1), ("053", 1), ("110", 1),
               ("120", 1), ("121", 1), ("122", 1), ("123", 1), ("124", 1), ("101", 2), ("100", 1), ("054", 1),
               ("055", 1), ("205", 1), ("401", 1))  # fmt: skip
#: codes after which the gate admits a card holder found in a fresh cache (a new card; or no answer: the cache)
ADMITTED_CODES = frozenset({"003", "004", "100", "101", "054", "055", "205", "401"})

#: the card variant (:data:`sim.card.variants.REGISTRY`) each kind carries; the others carry a genuine card
CARD_VARIANT: dict[Kind, str] = {
    Kind.TAMPERED: "altered-dg",
    Kind.CLONED: "clone",
    Kind.CLONE_HIDING: "clone-hiding-dg14-dg15",
    Kind.HOSTILE_CHAINING: "hostile-chaining",
    Kind.HOSTILE_OVERSIZE: "hostile-oversize",
    Kind.NO_SFI: "no-sfi",
}
for _name in CARD_VARIANT.values():
    variant(_name)  # a name the registry does not know fails here, at import

#: the patients who try to pass a gate they should not: none of them may ever be admitted
ATTACKS: frozenset[Kind] = frozenset(
    {Kind.TAMPERED, Kind.CLONED, Kind.BORROWED_CARD, Kind.FINGER_WITHHELD, Kind.CLONE_HIDING,
     Kind.HOSTILE_CHAINING, Kind.HOSTILE_OVERSIZE}
)  # fmt: skip
#: outcomes that let the patient in
ADMITTED = ("admitted", "admitted_provisional")
#: the clinic's outcome when the gate decided nothing and told the patient the card could not be read
NOT_READ = "not_read"


@dataclass(frozen=True)
class ProvinceFigures:
    name: str
    without_id: dict[str, int]
    mismatch: dict[str, int]

    @property
    def missing_share(self) -> float:
        a, b = sum(self.without_id.values()), sum(self.mismatch.values())
        return a / (a + b) if a + b else 0.5


def _read(path: Path) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            out[row["province"]] = {c: int(row[c]) for c in CATEGORIES}
    return out


def _plain(name: str) -> str:
    for prefix in ("TP ", "Tỉnh ", "Thành phố "):
        name = name.removeprefix(prefix)
    return name.replace("TP.", "").strip()


@cache
def figures() -> dict[str, ProvinceFigures]:
    """Province name (as in sim.population.PROVINCES, plus "Toàn quốc") -> figures."""
    without = _read(DATA / "bhyt_participants_without_id_by_province.csv")
    mismatch = _read(DATA / "bhyt_participants_id_mismatch_by_province.csv")
    out = {}
    for raw in without:
        name = _plain(raw)
        out[name] = ProvinceFigures(name, without[raw], mismatch[raw])
    return out


def province_figures(province: str | None) -> ProvinceFigures:
    table = figures()
    key = "Toàn quốc" if province in (None, "", "all") else _plain(str(province))
    if key not in table:
        close = ", ".join(sorted(n for n in table if n != "Toàn quốc")[:5])
        raise ValueError(f"unknown province {province!r} (e.g. {close} ...)")
    return table[key]


def province_code(name: str) -> str | None:
    for code, pname in PROVINCES:
        if pname == name:
            return code
    return None


@dataclass(frozen=True)
class Patient:
    index: int
    kind: Kind
    person: Person = field(repr=False)
    category: str
    card_seed: int
    gateway_code: str | None = None  # GATEWAY_OTHER: the code the gateway answers for this patient

    @property
    def has_card(self) -> bool:
        return self.kind not in (Kind.CHILD_NO_CARD, Kind.CHILD_TEMP_CARD) and self.route == "chip"

    @property
    def route(self) -> str:
        """How this patient checks in: ``chip``, ``vneid`` or ``desk``."""
        if self.kind in VNEID_VARIANT:
            return "vneid"
        return "desk" if self.kind in (Kind.CHILD_NO_CARD, Kind.CHILD_TEMP_CARD) else "chip"


@dataclass(frozen=True)
class Mix:
    """Shares of patient kinds (the rest are clean, insured records)."""

    problem_rate: float = 0.12  # share of patients whose insurance record has a problem
    uninsured: float = 0.04
    expired: float = 0.03
    child_no_card: float = 0.06
    tampered: float = 0.01
    cloned: float = 0.01
    borrowed_card: float = 0.02
    child_temp_card: float = 0.02
    gateway_other: float = 0.03
    vneid_valid: float = 0.05
    vneid_expired: float = 0.01
    vneid_wrong_level: float = 0.01
    vneid_offline: float = 0.01


def make_patients(
    count: int,
    seed: int = 0,
    province: str | None = None,
    mix: Mix | None = None,
    today: dt.date | None = None,
) -> list[Patient]:
    """``count`` patients of one clinic, reproducible for the same arguments."""
    mix = mix or Mix()
    today = today or dt.date.today()
    fig = province_figures(province)
    code = province_code(fig.name)
    rng = random.Random(f"clinic:{seed}:{fig.name}")
    all_cats = {c: fig.without_id[c] + fig.mismatch[c] for c in CATEGORIES}
    patients = []
    for i in range(count):
        r = rng.random()
        edges = [
            (mix.child_no_card, Kind.CHILD_NO_CARD),
            (mix.uninsured, Kind.UNINSURED),
            (mix.expired, Kind.EXPIRED),
            (mix.tampered, Kind.TAMPERED),
            (mix.cloned, Kind.CLONED),
            (mix.borrowed_card, Kind.BORROWED_CARD),
            (mix.child_temp_card, Kind.CHILD_TEMP_CARD),
            (mix.gateway_other, Kind.GATEWAY_OTHER),
            (mix.vneid_valid, Kind.VNEID_VALID),
            (mix.vneid_expired, Kind.VNEID_EXPIRED),
            (mix.vneid_wrong_level, Kind.VNEID_WRONG_LEVEL),
            (mix.vneid_offline, Kind.VNEID_OFFLINE),
            (mix.problem_rate, None),
        ]
        kind: Kind = Kind.INSURED
        acc = 0.0
        for share, k in edges:
            acc += share
            if r < acc:
                if k is None:
                    missing = rng.random() < fig.missing_share
                    kind = Kind.RECORD_MISSING_ID if missing else Kind.RECORD_MISMATCH
                else:
                    kind = k
                break
        if kind in (Kind.CHILD_NO_CARD, Kind.CHILD_TEMP_CARD):
            category = "children_under_6"
            person = make_person(seed * 1_000_003 + i, today, min_age=0, max_age=5, province_code=code)
        else:
            table = fig.without_id if kind is Kind.RECORD_MISSING_ID else fig.mismatch
            if kind not in (Kind.RECORD_MISSING_ID, Kind.RECORD_MISMATCH):
                table = all_cats
            weights = {c: w for c, w in table.items() if c != "children_under_6"}
            category = rng.choices(list(weights), weights=list(weights.values()))[0]
            min_age, max_age = _ages(category)
            person = make_person(seed * 1_000_003 + i, today, min_age=min_age, max_age=max_age, province_code=code)
        gateway_code = None
        if kind is Kind.GATEWAY_OTHER:
            gateway_code = rng.choices([c for c, _ in OTHER_CODES], weights=[w for _, w in OTHER_CODES])[0]
        patients.append(Patient(i, kind, person, category, seed * 1_000_003 + i, gateway_code))
    return patients


def _ages(category: str) -> tuple[int, int]:
    return {
        "pupils": (14, 18),
        "students": (18, 24),
        "pensioners": (60, 90),
        "enterprise_employees": (18, 60),
        "civil_servants": (22, 60),
    }.get(category, (14, 85))


def _strip_diacritics(text: str) -> str:
    import unicodedata

    text = text.replace("Đ", "D").replace("đ", "d")
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


def insurance_record(patient: Patient, facility_code: str, today: dt.date) -> dict[str, object] | None:
    """The insurer's record of this patient as the hub pushes it (None: not in the eligibility data).

    A record with a missing ID number cannot be found by ID at the gate, so it is not
    in the ID-keyed eligibility data either (the hub keeps it for its own report).
    """
    p = patient.person
    if patient.kind in (Kind.UNINSURED, Kind.RECORD_MISSING_ID, Kind.CHILD_TEMP_CARD):
        return None
    rng = random.Random(f"record:{patient.card_seed}")
    valid_from = dt.date(today.year, 1, 1)
    valid_to = dt.date(today.year, 12, 31)
    if patient.kind is Kind.EXPIRED:
        valid_to = today - dt.timedelta(days=rng.randint(1, 200))
        valid_from = valid_to - dt.timedelta(days=364)
    name, birth, sex = p.full_name, p.birth, p.sex
    if patient.kind is Kind.RECORD_MISMATCH:
        fault = rng.choice(("name", "birth", "sex", "name"))
        if fault == "name":
            name = _strip_diacritics(name)  # the most common data-entry fault
        elif fault == "birth":
            birth = dt.date(p.birth.year, 1, 1) if p.birth.timetuple().tm_yday != 1 else p.birth + dt.timedelta(days=1)
        else:
            sex = "F" if p.sex == "M" else "M"
    # most patients are registered at this facility; some come from elsewhere
    facility = facility_code if rng.random() < 0.8 else f"{rng.randint(1, 96):02d}{rng.randint(1, 999):03d}"
    prefix = {"pupils": "HS", "students": "SV", "pensioners": "HT", "children_under_6": "TE"}.get(
        patient.category, "GD"
    )
    return {
        "id_number": p.id_number,
        "card_number": f"{prefix}4{p.province_code[1:]}{rng.randint(0, 10**10 - 1):010d}",
        "valid_from": valid_from.isoformat(),
        "valid_to": valid_to.isoformat(),
        "facility_code": facility,
        "benefit_level": 5 if patient.category == "children_under_6" else rng.choice((2, 3, 4, 4, 4)),
        "category": patient.category,
        "full_name": name,
        "birth": birth.isoformat(),
        "sex": sex,
    }


@dataclass(frozen=True)
class Expect:
    """What the default policy shows for a kind: any of ``allowed``, each ``"outcome"`` or ``"outcome REASON"``."""

    allowed: tuple[str, ...]

    def met(self, outcome: str | None, reason: str | None) -> bool:
        return outcome is not None and any(a in (outcome, f"{outcome} {reason}") for a in self.allowed)

    @property
    def outcomes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(a.split()[0] for a in self.allowed))

    def describe(self) -> str:
        return " or ".join(self.allowed)


def _expect(*allowed: str) -> Expect:
    return Expect(allowed)


#: what a card variant's conclusion means at the gate (a fail-closed reader's outcome and reasons)
_BY_CONCLUSION: dict[str, Expect] = {
    PASSIVE_AUTH_FAILED: _expect("refused PA_FAILED"),
    CLONE_SUSPECTED: _expect("refused CLONE_SUSPECTED", "refused PACE_DOWNGRADE"),
    # the read fails: nothing is decided and the patient is told the card could not be read (a gate that
    # takes the chip for a copy refuses it instead)
    READ_ERROR: _expect(f"{NOT_READ} READ_FAILED", "refused CLONE_SUSPECTED"),
    ACCEPTED: _expect("admitted"),
}

#: what the default policy shows for each kind (facility aside: other-facility patients are still admitted);
#: the card variants' kinds take theirs from the variant's conclusion in the registry
EXPECTED: dict[Kind, Expect] = {
    Kind.INSURED: _expect("admitted"),
    Kind.RECORD_MISMATCH: _expect("admitted"),
    Kind.RECORD_MISSING_ID: _expect("refer_desk"),
    Kind.UNINSURED: _expect("refer_desk"),
    Kind.EXPIRED: _expect("refer_desk"),
    Kind.CHILD_NO_CARD: _expect("admitted_provisional"),
    Kind.BORROWED_CARD: _expect("refer_desk FINGER_NO_MATCH"),
    Kind.FINGER_WITHHELD: _expect("refer_desk FINGER_REQUIRED_NOT_CHECKED"),
    Kind.CHILD_TEMP_CARD: _expect("admitted_provisional"),
    Kind.GATEWAY_OTHER: _expect("admitted", "refer_desk"),  # which one: the patient's code (:func:`expected`)
    Kind.VNEID_VALID: _expect("admitted"),
    Kind.VNEID_EXPIRED: _expect("refer_desk"),
    Kind.VNEID_WRONG_LEVEL: _expect("refer_desk"),
    Kind.VNEID_OFFLINE: _expect("refer_desk"),
    **{kind: _BY_CONCLUSION[variant(name).conclusion] for kind, name in CARD_VARIANT.items()},
}
assert set(EXPECTED) == set(Kind), "every patient kind needs its expected outcome"
assert not any(set(EXPECTED[k].outcomes) & set(ADMITTED) for k in ATTACKS), "an attack is never expected in"


def expected(patient: Patient) -> Expect:
    """What the default policy shows this patient (with the hub and the gateway reachable)."""
    if patient.kind is Kind.GATEWAY_OTHER:
        return _expect("admitted") if patient.gateway_code in ADMITTED_CODES else _expect("refer_desk")
    return EXPECTED[patient.kind]


#: an ``--attacks`` clinic: every attack in turn, with genuine patients (a plain card, a card without SFI reads)
#: as the control group that must still be admitted
ATTACK_ROUND: tuple[Kind, ...] = (
    Kind.FINGER_WITHHELD, Kind.CLONE_HIDING, Kind.HOSTILE_CHAINING, Kind.HOSTILE_OVERSIZE, Kind.CLONED,
    Kind.TAMPERED, Kind.BORROWED_CARD, Kind.INSURED, Kind.NO_SFI,
)  # fmt: skip


def make_attack_patients(
    count: int,
    seed: int = 0,
    province: str | None = None,
    kinds: tuple[Kind, ...] = ATTACK_ROUND,
    today: dt.date | None = None,
) -> list[Patient]:
    """``count`` patients cycling through ``kinds`` (each round in a seeded order): every kind comes once
    ``count`` reaches ``len(kinds)``.  All are insured: only the gate's checks can keep an attacker out."""
    if not kinds:
        raise ValueError("an attack clinic needs at least one patient kind")
    today = today or dt.date.today()
    fig = province_figures(province)
    code = province_code(fig.name)
    rng = random.Random(f"attacks:{seed}:{fig.name}")
    weights = {c: fig.without_id[c] + fig.mismatch[c] for c in CATEGORIES if c != "children_under_6"}
    order: list[Kind] = []
    patients = []
    for i in range(count):
        if not order:
            order = list(kinds)
            rng.shuffle(order)
        kind = order.pop()
        category = rng.choices(list(weights), weights=list(weights.values()))[0]
        min_age, max_age = _ages(category)
        card_seed = seed * 1_000_003 + i
        person = make_person(card_seed, today, min_age=min_age, max_age=max_age, province_code=code)
        patients.append(Patient(i, kind, person, category, card_seed))
    return patients
