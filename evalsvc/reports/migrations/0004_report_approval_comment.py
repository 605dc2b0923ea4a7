from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("reports", "0003_report_edited_by"),
    ]

    operations = [
        migrations.AddField(
            model_name="report",
            name="approval_comment",
            field=models.TextField(blank=True, default=""),
        ),
    ]
