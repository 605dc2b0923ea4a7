from django.db import migrations, models


def fill_headlines(apps, schema_editor):
    """Work out the headline of every run that already has a result, a page of rows at a time."""
    from evalsvc.evaluations.headline import run_headline

    EvaluationRun = apps.get_model("evaluations", "EvaluationRun")
    runs = EvaluationRun.objects.filter(result__isnull=False).only("pk", "result").order_by("pk")
    batch = []
    for run in runs.iterator(chunk_size=200):
        run.headline = run_headline(run.result)
        batch.append(run)
        if len(batch) == 200:
            EvaluationRun.objects.bulk_update(batch, ["headline"])
            batch = []
    if batch:
        EvaluationRun.objects.bulk_update(batch, ["headline"])


class Migration(migrations.Migration):

    dependencies = [
        ("evaluations", "0002_runchunk"),
    ]

    operations = [
        migrations.AddField(
            model_name="evaluationrun",
            name="headline",
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.RunPython(fill_headlines, migrations.RunPython.noop),
    ]
