from django.apps import AppConfig


class FeedConfig(AppConfig):
    name = "compliance.feed"
    label = "feed"
    verbose_name = "Change feed"

    def ready(self) -> None:
        # app registry: models (and what imports them) load only once every app is registered
        from compliance.feed import signals  # noqa: F401  (worker start-up sweep)

        # app registry, as above
        from compliance.feed.models import (
            ERASURE_NOTICE,
            ERASURE_NOTICE_WHY,
            Change,
            DeliveryReceipt,
            DeliveryState,
        )

        # app registry, as above
        from compliance.personal_data import personal_data_exempt, personal_data_register

        personal_data_register(
            model=Change,
            subject_field="subject_id",
            order=150,
            description="change feed outbox (membership enters/exits, consent changes)",
            exportable=False,
            # erasure keeps the person's erasure notices until they are delivered (Art. 19)
            retained=ERASURE_NOTICE,
            retained_why=ERASURE_NOTICE_WHY,
        )
        personal_data_exempt(
            model=DeliveryState,
            why="one cursor per webhook subscription and region; no subject",
        )
        personal_data_exempt(
            model=DeliveryReceipt,
            why="status code, time and change id range of a webhook delivery; no subject",
        )
