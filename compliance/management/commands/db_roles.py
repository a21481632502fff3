"""``python manage.py db_roles --database ALIAS --app-role NAME``: the runtime role's grants."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from compliance.owner_connections import owner_connections
from compliance.retention.conf import retention_settings
from compliance.services.db_roles import DbRolesError, db_roles_apply, password_from_env


class Command(BaseCommand):
    help = (
        "Create the runtime role (if missing) and set its grants on one database: read, "
        "insert where the application needs to, no UPDATE/DELETE/TRUNCATE on the audit log, "
        "consent events and memberships (privileged writes go through guard functions). "
        "Run as the owner (DATABASE_OWNER_URL*), after migrate_all; idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument("--database", required=True, help="database alias, e.g. default, eu")
        parser.add_argument("--app-role", required=True, help="the runtime role's name")
        parser.add_argument(
            "--password-env", help="environment variable holding the runtime role's password"
        )
        parser.add_argument(
            "--retention-floor-days",
            type=int,
            default=30,
            help="consent events and closed stays younger than this are never deleted by "
            "retention (default 30)",
        )

    def handle(self, *args, database, app_role, password_env, retention_floor_days, **options):
        if database not in settings.DATABASES:
            raise CommandError(
                f"--database {database!r}: unknown alias; known: {', '.join(settings.DATABASES)}"
            )
        if retention_floor_days < 0:
            raise CommandError("--retention-floor-days must be 0 or more")
        try:
            with owner_connections([database]):
                done = db_roles_apply(
                    using=database,
                    app_role=app_role,
                    password=password_from_env(password_env),
                    audit_min_days=retention_settings.AUDIT_MIN_DAYS,
                    retention_floor_days=retention_floor_days,
                )
        except DbRolesError as error:
            raise CommandError(str(error)) from None
        for line in done:
            self.stdout.write(f"{database}: {line}")
        self.stdout.write(self.style.SUCCESS(f"{database}: runtime role {app_role} is ready"))
