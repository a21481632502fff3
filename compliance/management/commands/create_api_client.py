"""``python manage.py create_api_client NAME --scopes a,b [--user USERNAME]``; prints the token once."""

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from compliance.api.auth import token_generate, token_hash
from compliance.api.scopes import SCOPES
from compliance.models import ApiClient
from compliance.services.api_clients import officer_scopes_refusal


class Command(BaseCommand):
    help = "Create an API client and print its bearer token (shown only once)."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument(
            "--scopes", required=True, help="comma-separated, e.g. dsar:write,dsar:read"
        )
        parser.add_argument("--user", help="staff username the token acts as (for approvals)")

    def handle(self, *args, name, scopes, user, **options):
        wanted = [s.strip() for s in scopes.split(",") if s.strip()]
        unknown = [s for s in wanted if s not in SCOPES]
        if not wanted or unknown:
            raise CommandError(
                f"unknown scopes {', '.join(unknown) or '(none given)'}; known: {', '.join(SCOPES)}"
            )
        staff = None
        if user:
            staff = get_user_model().objects.filter(username=user, is_staff=True).first()
            if staff is None:
                raise CommandError(f"no staff user {user!r}; create it with create_staff")
        refusal = officer_scopes_refusal(scopes=wanted, user=staff)
        if refusal:
            raise CommandError(
                f"{refusal}. Pass --user with a privacy officer's username, or drop those scopes."
            )
        if ApiClient.objects.filter(name=name).exists():
            raise CommandError(f"an API client named {name!r} exists already")
        token = token_generate()
        callback_secret = secrets.token_hex(32)
        ApiClient.objects.create(
            name=name,
            token_prefix=token[:12],
            token_hash=token_hash(token),
            scopes=wanted,
            user=staff,
            callback_secret=callback_secret,
        )
        self.stdout.write(f"API client {name!r} created with scopes {', '.join(wanted)}.")
        self.stdout.write(
            "Callback signing secret (HMAC-SHA256 of status callbacks; shown once): "
            f"{callback_secret}"
        )
        self.stdout.write("Token (shown once, store it now):")
        self.stdout.write(token)
