"""Factories (factory_boy) for the tests: people, consent, segments, stays and requests.

Everything that must leave an audit trail is made through the toolkit's own services, so
blind indexes, encryption, regions and audit entries are exactly what production writes:

* ``SubjectFactory(jurisdiction="DE", consents=["measurement"])``: ``subject_resolve`` in the
  jurisdiction's region (EU countries to ``eu``, default ``FR``) by ``email`` (a fresh one
  unless given; or ``identifier_type`` and ``value``); further ``identifiers={"crm_id": "C-1"}``
  attached; web grants for ``consents`` (``consented=True``: the behavioral layer's purposes);
  with ``merged_into=survivor``, merged into it through ``subjects_merge``.
* ``ConsentFactory(subject=person, purpose="storage", decision="withdrawn")``:
  ``consent_record`` (any of its keyword arguments may be given).
* ``StaffFactory(username="ana", group=AUDITOR)``: a staff user in a role group.
* ``SegmentFactory(user=officer, layers=["intent"], status="draft")``: ``segment_create``,
  then approved and activated by ``user`` up to ``status`` (default ``active``).
* ``TrackingPlanFactory(source="web", mode="block")``: ``tracking_plan_publish`` of the
  source's next plan version (default events: ``tests.factories.plans.WEB_EVENTS``).
* ``PrivacyRequestFactory(type="access", status="completed")``: ``request_open`` for a person
  with data (``subject=None``: no person made), then moved on by the request services and
  ``request_transition`` to ``status``, every step audited.

Plain rows, for seeding what no service writes directly (history, old data), in the region's
database named by ``region`` (default ``eu``): ``SubjectRowFactory``, ``SegmentStayFactory``
(a stay, written as the table owner behind the membership guards).

``build()`` is refused where only the service may make the row. ``ACTOR`` is the system actor
the factories record as.
"""

from tests.factories.consents import ConsentFactory
from tests.factories.plans import TrackingPlanFactory
from tests.factories.requests import PrivacyRequestFactory
from tests.factories.segments import SegmentFactory, SegmentStayFactory
from tests.factories.subjects import ACTOR, SubjectFactory, SubjectRowFactory
from tests.factories.users import StaffFactory

__all__ = [
    "ACTOR",
    "ConsentFactory",
    "PrivacyRequestFactory",
    "SegmentFactory",
    "SegmentStayFactory",
    "StaffFactory",
    "SubjectFactory",
    "SubjectRowFactory",
    "TrackingPlanFactory",
]
