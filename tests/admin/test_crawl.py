"""Crawl the admin as each role: every URL reachable from the index and the change lists (and
from the pages those link to) answers 200, 302 or 403, never a server error."""

from __future__ import annotations

import re
from collections import deque
from html import unescape

import pytest
from django.test import Client

from compliance.api.auth import token_hash
from compliance.models import ApiClient
from tests.admin.helpers import PASSWORD, ROLE_USERS
from tests.factories import (
    ConsentFactory,
    PrivacyRequestFactory,
    SegmentFactory,
    StaffFactory,
    SubjectFactory,
)

pytestmark = pytest.mark.django_db(databases="__all__")

HREF = re.compile(r'href="([^"#]+)"')
SKIP = ("/admin/logout/", "/admin/password_change/", "/admin/jsi18n/")
MAX_DEPTH = 3
MAX_URLS = 1000
#: sorting and filter links of one change list: a few are enough
MAX_QUERY_VARIANTS = 4


@pytest.fixture
def data():
    officer = StaffFactory(username="crawl-owner", group="Privacy officer", password=PASSWORD)
    subject = SubjectFactory(email="crawl@example.fr")
    ConsentFactory(subject=subject, purpose="measurement")
    PrivacyRequestFactory(email="erase-me@example.fr")
    SegmentFactory(user=officer, status="draft", key="crawl-seg")
    ApiClient.objects.create(
        name="crawl-client", token_hash=token_hash("ctk_crawl"), scopes=["dsar:read"]
    )


def crawl(client: Client) -> dict[str, int]:
    seen: dict[str, int] = {}
    variants: dict[str, int] = {}
    queue = deque([("/admin/", 0)])
    while queue:
        url, depth = queue.popleft()
        if url in seen:
            continue
        assert len(seen) < MAX_URLS, "the crawl does not end"
        if "?" in url:
            path = url.split("?")[0]
            variants[path] = variants.get(path, 0) + 1
            if variants[path] > MAX_QUERY_VARIANTS:
                continue
        response = client.get(url)
        seen[url] = response.status_code
        location = response.get("Location", "")
        if response.status_code == 302 and location.startswith("/admin/"):
            queue.append((location, depth))
        if response.status_code != 200 or depth >= MAX_DEPTH:
            continue
        if "html" not in response.get("Content-Type", ""):
            continue
        for href in HREF.findall(response.content.decode(errors="replace")):
            href = unescape(href)
            if href.startswith("?"):
                href = url.split("?")[0] + href
            if not href.startswith("/admin/") or href.startswith(SKIP):
                continue
            if "/delete/" in href and depth >= 2:
                continue
            queue.append((href, depth + 1))
    return seen


@pytest.mark.parametrize("role", ["officer", "support", "auditor"])
def test_admin_crawl_never_500s(data, role):
    user = StaffFactory(username=f"crawler-{role}", group=ROLE_USERS[role], password=PASSWORD)
    client = Client(raise_request_exception=False)
    client.force_login(user)
    seen = crawl(client)
    assert len(seen) > 30, seen
    assert any("/change/" in url for url in seen), "the crawl reached change pages"
    assert "/admin/compliance/apiclient/1/change/" in seen or any(
        re.match(r"/admin/compliance/apiclient/\d+/change/", url) for url in seen
    )
    bad = {url: code for url, code in seen.items() if code not in (200, 302, 403)}
    assert not bad, bad
