# Hand-written: the "open invoices by due date" dashboard scans only draft and sent invoices;
# a partial index keeps it small. Plain SQL (valid on PostgreSQL and SQLite); the reverse drops
# exactly the index created here.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("upstream", "0014_customer_currency"),
    ]

    operations = [
        migrations.RunSQL(
            sql=(
                "CREATE INDEX upstream_invoice_open_due_idx ON upstream_invoice (due_date) "
                "WHERE status IN ('draft', 'sent');"
            ),
            reverse_sql="DROP INDEX IF EXISTS upstream_invoice_open_due_idx;",
        ),
    ]
