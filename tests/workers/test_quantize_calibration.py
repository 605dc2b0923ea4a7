"""Static INT8 calibration rows are held out of the comparison; every model is scored on the same rows."""

from __future__ import annotations

import numpy as np
import pytest

from evalsvc.core.exceptions import ValidationFailed
from evalsvc.evaluations.services import run_submit
from evalsvc.registry.services import dataset_version_register, model_version_register
from tests.support.models import digits_table
from workers.tasks.quantize import run_quantize

pytestmark = pytest.mark.django_db


@pytest.fixture
def sorted_digits(alice, alpha, tmp_path, digits_mlp):
    """The digits data sorted by digit, as an archive sorted by class would be read, and the MLP's predictions."""
    table = digits_table()
    table["predicted"] = digits_mlp.predicted
    table = table.sort_values("digit", kind="stable").reset_index(drop=True)
    csv = tmp_path / "digits-sorted.csv"
    table.drop(columns="predicted").to_csv(csv, index=False)
    model = model_version_register(
        user=alice, team=alpha, name="digits-mlp", path=str(digits_mlp.path), filename="mlp.onnx",
        processing={"output": {"activation": "softmax"}},
    )  # fmt: skip
    data = dataset_version_register(
        user=alice, team=alpha, name="digits-sorted", path=str(csv), filename="digits.csv", label_column="digit"
    )
    return model, data, table


def _quantize(alice, model, data, **params):
    run = run_submit(user=alice, model_version_id=model.pk, dataset_version_id=data.pk, kind="quantize", params=params)
    run_quantize.apply(args=[str(run.pk)])
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    return run


def test_calibration_rows_are_stratified_held_out_and_every_model_scored_on_the_rest(client, alice, sorted_digits):
    model, data, table = sorted_digits
    run = _quantize(alice, model, data, variants=["int8_static", "int8_dynamic"], calibration_rows=100, seed=5)
    result = run.result
    calibration = result["calibration"]
    assert calibration["method"] == "stratified" and calibration["seed"] == 5 and calibration["held_out"]
    used = np.array(calibration["indices"])
    assert len(used) == calibration["rows"] == 100
    # every digit is among the calibration rows, though the file is sorted by digit
    assert set(table["digit"][used]) == set(range(10))
    assert sum(calibration["classes"].values()) == 100
    held_out = np.ones(len(table), dtype=bool)
    held_out[used] = False
    assert result["rows"] == held_out.sum() == len(table) - 100
    # parent and variants: accuracy on the held-out rows, as numpy computes it from scikit-learn's predictions
    expected = float(np.mean(table["predicted"][held_out] == table["digit"][held_out]))
    assert result["parent"]["metrics"]["accuracy"] == pytest.approx(expected, abs=1e-12)
    for variant in result["variants"]:
        assert variant["status"] == "ok", variant
        assert variant["compared_rows"] == variant["scored_rows"] == result["rows"]
    assert result["parent"]["scored_rows"] == result["rows"]
    assert result["serving_batch_size"] == 64

    # the page and the report say how the rows were chosen, and which
    client.force_login(alice)
    html = client.get(f"/runs/{run.pk}/").content.decode()
    assert "stratified by label with seed 5" in html and "left out of every comparison" in html
    from evalsvc.reports.services import report_generate

    report = report_generate(user=alice, model_version_id=model.pk, run_ids=[str(run.pk)])
    (job,) = report.document["jobs"]
    assert "calibrated on 100 rows" in job["method"] and "64 rows per call" in job["method"]
    assert any(", ".join(str(i) for i in used[:20]) in note for note in job["notes"])

    again = _quantize(alice, model, data, variants=["int8_static"], calibration_rows=100, seed=5)
    assert again.result["calibration"]["indices"] == calibration["indices"]
    other = _quantize(alice, model, data, variants=["int8_static"], calibration_rows=100, seed=6)
    assert other.result["calibration"]["indices"] != calibration["indices"]


def test_calibration_on_another_data_set_scores_every_row_and_records_it(alice, alpha, sorted_digits, tmp_path):
    model, data, table = sorted_digits
    csv = tmp_path / "calibration.csv"
    table.drop(columns="predicted").iloc[::3].to_csv(csv, index=False)
    other = dataset_version_register(
        user=alice, team=alpha, name="digits-calibration", path=str(csv), filename="c.csv", label_column="digit"
    )
    run = _quantize(
        alice, model, data, variants=["int8_static"], calibration_dataset=str(other.pk), serving_batch_size=1,
        max_rows=300,
    )  # fmt: skip
    calibration = run.result["calibration"]
    assert calibration["dataset_version_id"] == str(other.pk) and calibration["held_out"] is False
    assert calibration["rows"] == 256
    assert run.result["rows"] == 300
    assert run.result["serving_batch_size"] == 1
    (variant,) = run.result["variants"]
    assert variant["compared_rows"] == variant["scored_rows"] == run.result["parent"]["scored_rows"] == 300


def test_calibration_dataset_and_rows_are_checked_at_submission(alice, carol, users, sorted_digits, tmp_path):
    model, data, table = sorted_digits
    with pytest.raises(ValidationFailed, match="leaves no row"):
        run_submit(
            user=alice, model_version_id=model.pk, dataset_version_id=data.pk, kind="quantize",
            params={"calibration_rows": len(table)},
        )  # fmt: skip
    csv = tmp_path / "narrow.csv"
    table[["p0", "digit"]].to_csv(csv, index=False)
    narrow = dataset_version_register(
        user=alice, team=data.team, name="narrow", path=str(csv), filename="n.csv", label_column="digit"
    )
    with pytest.raises(ValidationFailed, match="lacks"):
        run_submit(
            user=alice, model_version_id=model.pk, dataset_version_id=data.pk, kind="quantize",
            params={"calibration_dataset": str(narrow.pk)},
        )  # fmt: skip
    foreign = dataset_version_register(
        user=carol, team=users["gamma"], name="theirs", path=str(csv), filename="n.csv", label_column="digit"
    )
    with pytest.raises(ValidationFailed, match="no data set version with that id in this team"):
        run_submit(
            user=alice, model_version_id=model.pk, dataset_version_id=data.pk, kind="quantize",
            params={"calibration_dataset": str(foreign.pk)},
        )  # fmt: skip
