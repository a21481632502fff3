"""``python manage.py create_staff USERNAME --group "Privacy officer" [--password-env VAR]``."""

import getpass
import os

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from compliance.roles import ROLES


class Command(BaseCommand):
    help = "Create (or update) a staff user in one of the toolkit's groups."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--group", required=True, choices=ROLES)
        parser.add_argument("--password-env", help="read the password from this env variable")
        parser.add_argument("--email", default="")

    def handle(self, *args, username, group, password_env, email, **options):
        if password_env:
            password = os.environ.get(password_env)
            if not password:
                raise CommandError(f"environment variable {password_env} is empty or not set")
        else:
            password = getpass.getpass(f"Password for {username}: ")
            if password != getpass.getpass("Again: "):
                raise CommandError("passwords do not match")
        User = get_user_model()
        try:
            validate_password(password, User(username=username, email=email))
        except ValidationError as exc:
            raise CommandError("password rejected: " + " ".join(exc.messages)) from exc
        try:
            role = Group.objects.get(name=group)
        except Group.DoesNotExist as exc:
            raise CommandError("groups missing: run `python manage.py migrate_all` first") from exc
        with transaction.atomic(using="default"):
            user, created = User.objects.get_or_create(username=username)
            user.email = email or user.email
            user.is_staff = True
            user.set_password(password)
            user.save()
            user.groups.add(role)
        verb = "created" if created else "updated"
        self.stdout.write(self.style.SUCCESS(f"{verb} staff user {username!r} in {group!r}"))
