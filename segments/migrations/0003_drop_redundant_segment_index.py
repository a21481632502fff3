"""Drop ``seg_member_seg_subj``: every lookup by segment asks for active stays, which the partial
unique index ``seg_member_one_active`` (same columns) serves; lookups by subject use
``seg_member_subj_time``. One index less to maintain on every membership write."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("segments", "0002_membership_write_guard")]

    operations = [
        migrations.RemoveIndex(model_name="segmentmembership", name="seg_member_seg_subj"),
    ]
