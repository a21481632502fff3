"""The demo people of ``manage.py load_demo`` (fictional: ``example.*`` domains are reserved for
documentation) and the helpers the apps' demo loaders share.

The demo must load again in any state a user can bring it to through the admin or the API:
an erased person is never re-created (their identifiers are suppressed; ``demo_subject``
returns None for them), and a story item the officer has dealt with is set up again with the
next person of its role (``demo_candidates``), so every start shows the whole story.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from compliance.audit.services.append import Actor
from compliance.identifiers import identifier_normalize
from compliance.models import Subject, SubjectDirectory
from compliance.services.subjects import (
    SubjectSuppressedError,
    identifier_blind_index,
    is_suppressed,
    subject_resolve,
)


@dataclass(frozen=True)
class DemoPerson:
    email: str
    jurisdiction: str
    role: str


DEMO_PEOPLE = [
    DemoPerson("amelie.martin@example.fr", "FR", "consents on the web; her access request is done"),
    DemoPerson("jonas.becker@example.de", "DE", "asked to be erased: awaiting your approval"),
    DemoPerson("lucia.rossi@example.it", "IT", "access request overdue (identity check pending)"),
    DemoPerson("jordan.lee@example.com", "US-CA", "measurement consent, Sec-GPC: 1 opt-out"),
    DemoPerson("sam.taylor@example.com", "US-NY", "opted out of sale and sharing in the app"),
    DemoPerson("riley.morgan@example.com", "US-TX", "erased: completed erasure, signed receipt"),
]
#: how many stand-ins each role may use once its person was erased or their request closed
RESERVES = 50


def demo_person(email: str) -> DemoPerson:
    return next(p for p in DEMO_PEOPLE if p.email == email)


def demo_candidates(email: str) -> Iterator[DemoPerson]:
    """The person of a story role, then stand-ins (``jonas.becker2@example.de``, ...)."""
    person = demo_person(email)
    yield person
    local, domain = person.email.split("@")
    for n in range(2, RESERVES + 2):
        yield DemoPerson(f"{local}{n}@{domain}", person.jurisdiction, person.role)


def demo_subject(*, person: DemoPerson, actor: Actor, create: bool = True) -> Subject | None:
    """The person's subject (created on first use); None once the person was erased."""
    try:
        return subject_resolve(
            identifier_type="email",
            value=person.email,
            jurisdiction=person.jurisdiction,
            actor=actor,
            create=create,
        )
    except SubjectSuppressedError:
        return None


def demo_state(*, person: DemoPerson) -> str:
    """``present``, ``erased`` or ``absent`` (never created)."""
    index = identifier_blind_index(
        identifier=identifier_normalize(identifier_type="email", value=person.email)
    )
    if SubjectDirectory.objects.filter(blind_index=index).exists():
        return "present"
    return "erased" if is_suppressed(blind_index=index) else "absent"


def demo_people_in_use() -> list[tuple[DemoPerson, str]]:
    """Every demo person and stand-in that exists or existed, with its state."""
    found = []
    for person in DEMO_PEOPLE:
        for candidate in demo_candidates(person.email):
            state = demo_state(person=candidate)
            if state == "absent" and candidate is not person:
                break
            found.append((candidate, state))
    return found
