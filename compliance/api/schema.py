"""OpenAPI for drf-spectacular: the bearer scheme, one tag per area, a summary and the required
scope on every operation, and the error envelope on every error response.

* ``ApiAutoSchema`` (``DEFAULT_SCHEMA_CLASS``): tags from the path, the summary from
  ``extend_schema`` or else the first line of the handler's (or view's) docstring, security
  ``[{"bearerAuth": ["<scope>"]}]`` (OpenAPI 3.1 allows role names for non-OAuth schemes).
* ``errors_postprocess`` (a postprocessing hook): the ``Error`` component and the 4xx answers
  every operation can give, with ``Allow`` on 405 and ``Retry-After`` on 429.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema

from compliance.api.permissions import required_scope

#: first path segment after /api/v1/ -> tag
TAGS = {
    "consents": "consent",
    "subjects": "consent",
    "events": "events",
    "segments": "segments",
    "requests": "requests",
    "changes": "feed",
    "signals": "signals",
}
TAG_DESCRIPTIONS = {
    "consent": "Record consent decisions and signals; read a subject's state and history.",
    "events": "Consent-gated behavioral events.",
    "segments": "Segment governance, memberships and membership history.",
    "requests": "Data subject requests (DSARs): open, track, approve, download.",
    "feed": "The change feed (pull); the same changes are pushed to webhooks.",
    "signals": "Decode consent signals (IAB TCF) without storing anything.",
}


class ApiTokenAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "compliance.api.auth.ApiTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "API client token: `Authorization: Bearer <token>`. Each operation lists the "
                "one scope it needs in its security requirement; `dsar:approve` and "
                "`segments:review` also need a token tied to a staff user in the "
                "'Privacy officer' group."
            ),
        }


class ApiAutoSchema(AutoSchema):
    def get_tags(self) -> list[str]:
        parts = self.path.strip("/").split("/")
        area = parts[2] if len(parts) > 2 and parts[:2] == ["api", "v1"] else ""
        return [TAGS.get(area, "other")]

    def get_summary(self) -> str | None:
        summary = getattr(self.view, "schema_summary", None) or super().get_summary()
        if summary:
            return summary
        handler = getattr(self.view, self.method.lower(), None)
        for doc in (getattr(handler, "__doc__", None), self.view.__class__.__doc__):
            if doc and doc.strip():
                return doc.strip().splitlines()[0].rstrip(".")
        return None

    def get_auth(self):
        auth = super().get_auth()
        scope = required_scope(view=self.view, method=self.method)
        if not scope or not auth:
            return auth
        return [{"bearerAuth": [scope]}]

    def get_description(self):
        description = super().get_description() or ""
        scope = required_scope(view=self.view, method=self.method)
        if scope:
            note = f"Scope: `{scope}`."
            if getattr(self.view, "required_group", None):
                note += f" The token must act as a staff user in '{self.view.required_group}'."
            description = f"{description}\n\n{note}" if description else note
        return description


ERROR_SCHEMA = {
    "type": "object",
    "description": "Every failure: one envelope, `fields` names the culprit inputs.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "stable error code, e.g. `invalid`"},
                "message": {"type": "string"},
                "fields": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                    "description": "input name (e.g. `events[3].source`) -> problems",
                },
            },
            "required": ["code", "message", "fields"],
        }
    },
    "required": ["error"],
}
ERRORS = {
    "400": "Malformed or refused input (nothing was written); `fields` names the culprits.",
    "401": "No token, or an unknown or revoked one.",
    "403": "The token lacks the scope (or the privacy officer role) this operation needs.",
    "404": "No such resource (or not this client's).",
    "405": "Method not allowed here; `Allow` lists the allowed ones.",
    "409": "Conflict with the resource's state.",
    "413": "Request body over the limit (1 MiB; events: 20 MiB).",
    "415": "The body is not `application/json`.",
    "429": "Too many requests; retry after `Retry-After` seconds.",
}
HEADERS = {
    "405": {"Allow": {"schema": {"type": "string"}, "description": "allowed methods"}},
    "429": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds to wait"}},
}


def errors_postprocess(result, generator, request, public):
    """Add the ``Error`` component, the tag list and the error answers to every operation."""
    components = result.setdefault("components", {})
    components.setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    ref = {"$ref": "#/components/schemas/Error"}
    result["tags"] = [
        {"name": name, "description": text} for name, text in TAG_DESCRIPTIONS.items()
    ]
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            for code, text in ERRORS.items():
                if code in responses:
                    continue
                answer = {"description": text, "content": {"application/json": {"schema": ref}}}
                if code in HEADERS:
                    answer["headers"] = HEADERS[code]
                responses[code] = answer
    return result


VERIFY_SNIPPET = """```python
import hashlib, hmac, time

def verify(secret: str, body: bytes, timestamp: str, signature: str, tolerance=300) -> bool:
    if abs(time.time() - int(timestamp)) > tolerance:  # replayed or very late
        return False
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest("{prefix}=" + mac.hexdigest(), signature)
```
Use the raw body bytes; deduplicate by `{dedupe}`."""


def _header(description: str, *, type_: str = "string", fmt: str | None = None) -> dict:
    schema = {"type": type_} | ({"format": fmt} if fmt else {})
    return {"in": "header", "required": True, "schema": schema, "description": description}


CALLBACK_PAYLOAD = {
    "type": "object",
    "description": "A DSAR status change; no personal data.",
    "properties": {
        "event_id": {"type": "string", "format": "uuid", "description": "same on every retry"},
        "attempt": {"type": "integer", "minimum": 1},
        "id": {"type": "string", "format": "uuid", "description": "the request's id"},
        "type": {"type": "string"},
        "status": {"type": "string", "description": "the status this callback announces"},
        "current_status": {"type": "string", "description": "the status when sent"},
        "sent_at": {"type": "string", "format": "date-time"},
    },
    "required": ["event_id", "attempt", "id", "type", "status", "current_status", "sent_at"],
}
WEBHOOK_BATCH = {
    "type": "object",
    "description": "A batch of changes in feed (commit) order.",
    "properties": {
        "batch_id": {"type": "string", "format": "uuid", "description": "new on every try"},
        "attempt": {"type": "integer", "minimum": 1, "description": "tries of this position"},
        "region": {"type": "string"},
        "subscription": {"type": "string"},
        "changes": {"type": "array", "items": {"$ref": "#/components/schemas/ChangeOutput"}},
    },
    "required": ["batch_id", "attempt", "region", "subscription", "changes"],
}
_ANSWER = {"2XX": {"description": "Received; any other answer (or none in time) is retried."}}


def callback_operation() -> dict:
    return {
        "post": {
            "summary": "DSAR status callback (sent to the request's callback_url)",
            "description": (
                "Sent after each status change of a request opened with a `callback_url`, "
                "signed with the API client's callback secret: `X-Compliance-Signature` is "
                '`sha256=<hex HMAC-SHA256(secret, "<timestamp>." + raw body)>`. Retried with '
                "backoff until a 2xx; each try carries the same event id and the next attempt "
                "number.\n\n"
                + VERIFY_SNIPPET.format(prefix="sha256", dedupe="X-Compliance-Event-Id")
            ),
            "parameters": [
                {"name": "X-Compliance-Event-Id", **_header("dedupe key", fmt="uuid")},
                {"name": "X-Compliance-Attempt", **_header("1, 2, ...", type_="integer")},
                {"name": "X-Compliance-Timestamp", **_header("Unix seconds", type_="integer")},
                {"name": "X-Compliance-Signature", **_header("sha256=<hex HMAC-SHA256>")},
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/DsarCallback"}}
                },
            },
            "responses": _ANSWER,
        }
    }


def webhook_operation() -> dict:
    return {
        "post": {
            "summary": "Change feed webhook batch (sent to a subscription's URL)",
            "tags": ["feed"],
            "description": (
                "Batches of up to 500 changes, signed with the subscription's secret: "
                '`X-Compliance-Signature` is `v1=<hex HMAC-SHA256(secret, "<timestamp>." + raw '
                "body)>`. Delivery is at least once, in feed order.\n\n"
                + VERIFY_SNIPPET.format(prefix="v1", dedupe="each change's id")
            ),
            "parameters": [
                {"name": "X-Compliance-Batch", **_header("batch id", fmt="uuid")},
                {"name": "X-Compliance-Event-Id", **_header("same as the batch id", fmt="uuid")},
                {"name": "X-Compliance-Attempt", **_header("1, 2, ...", type_="integer")},
                {"name": "X-Compliance-Timestamp", **_header("Unix seconds", type_="integer")},
                {"name": "X-Compliance-Signature", **_header("v1=<hex HMAC-SHA256>")},
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/WebhookBatch"}}
                },
            },
            "responses": _ANSWER,
        }
    }


def callbacks_postprocess(result, generator, request, public):
    """The DSAR status callback (on ``POST /api/v1/requests/``) and the feed webhook."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["DsarCallback"] = CALLBACK_PAYLOAD
    schemas["WebhookBatch"] = WEBHOOK_BATCH
    opening = result.get("paths", {}).get("/api/v1/requests/", {}).get("post")
    if opening is not None:
        opening["callbacks"] = {
            "statusCallback": {"{$request.body#/callback_url}": callback_operation()}
        }
    result["webhooks"] = {"changeBatch": webhook_operation()}
    return result


_REQUEST = "/api/v1/requests/{request_id}/"
_SEGMENT = "/api/v1/segments/{key}/"
#: OpenAPI links: (from path, method, status) -> [(name, to path, method, parameters)]
LINKS = {
    ("/api/v1/requests/", "post", "201"): [
        (name, _REQUEST + suffix, method, {"request_id": "$response.body#/id"})
        for name, suffix, method in [
            ("GetRequest", "", "get"),
            ("ListCallbacks", "callbacks/", "get"),
            ("PreviewErasure", "preview/", "get"),
            ("CancelRequest", "cancel/", "post"),
            ("ApproveRequest", "approve/", "post"),
            ("RejectRequest", "reject/", "post"),
            ("ExtendRequest", "extend/", "post"),
        ]
    ],
    ("/api/v1/segments/", "post", "201"): [
        (name, _SEGMENT + suffix, "post" if suffix else "get", {"key": "$response.body#/key"})
        for name, suffix in [
            ("GetSegment", ""),
            ("ApproveSegment", "approve/"),
            ("ActivateSegment", "activate/"),
            ("PauseSegment", "pause/"),
        ]
    ],
    ("/api/v1/consents/", "post", "201"): [
        (
            "GetConsents",
            "/api/v1/subjects/{subject_id}/consents/",
            "get",
            {"subject_id": "$response.body#/subject_id"},
        ),
        (
            "GetConsentMode",
            "/api/v1/subjects/{subject_id}/consent-mode/",
            "get",
            {"subject_id": "$response.body#/subject_id"},
        ),
    ],
}


def links_postprocess(result, generator, request, public):
    """OpenAPI links from what a POST creates to what reads or acts on it (clients and the
    stateful property-based test follow them)."""
    paths = result.get("paths", {})
    for (path, method, status), links in LINKS.items():
        response = paths.get(path, {}).get(method, {}).get("responses", {}).get(status)
        if response is None:
            continue
        response["links"] = {
            name: {"operationId": paths[target][target_method]["operationId"], "parameters": params}
            for name, target, target_method, params in links
            if target_method in paths.get(target, {})
        }
    return result
