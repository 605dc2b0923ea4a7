from __future__ import annotations

from django.conf import settings
from django.db import models

from evalsvc.teams.models import TeamOwned


class ModelFormat(models.TextChoices):
    ONNX = "onnx", "ONNX"
    TORCHSCRIPT = "torchscript", "TorchScript"
    TORCH_EXPORT = "torch_export", "torch.export program"
    OPENVINO = "openvino", "OpenVINO IR"
    TFLITE = "tflite", "TFLite (LiteRT)"


class DatasetFormat(models.TextChoices):
    CSV = "csv", "CSV"
    PARQUET = "parquet", "Parquet"
    IMAGEFOLDER = "imagefolder", "Image folders (zip)"


class ArtifactStatus(models.TextChoices):
    #: Stored; a worker is checking the file (large uploads). Jobs wait for "ready".
    VALIDATING = "validating", "Validating"
    READY = "ready", "Ready"
    #: The file was refused after upload; ``status_message`` says why, its bytes are gone.
    FAILED = "failed", "Failed"


class Artifact(TeamOwned):
    """Bytes stored content-addressed under the storage root, identified by SHA-256."""

    version = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64, db_index=True)
    size_bytes = models.BigIntegerField()
    storage_key = models.CharField(max_length=255)
    original_filename = models.CharField(max_length=255, blank=True)
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=16, choices=ArtifactStatus.choices, default=ArtifactStatus.READY)
    #: Why validation failed (status "failed"); while "validating", what it waits for, if anything.
    status_message = models.TextField(blank=True, default="")
    #: Times a worker started validating it: a file that kills its worker is not retried for ever.
    validation_attempts = models.PositiveSmallIntegerField(default=0)
    #: The validation message sent for it ("" while none is: the broker could not take it, or it was requeued).
    validation_task_id = models.CharField(max_length=64, blank=True, default="")
    #: The worker validating it, and since when: a worker that stops reporting gets its validation requeued.
    validation_worker = models.CharField(max_length=200, blank=True, default="")
    validation_started_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def is_ready(self) -> bool:
        return self.status == ArtifactStatus.READY


class RegisteredModel(TeamOwned):
    """A named model of a team; its files are its versions."""

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    #: Free text for audit reports: what the model is for, and what it is known not to do well.
    intended_use = models.TextField(blank=True, default="")
    limitations = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="unique_model_name_per_team")]

    def __str__(self) -> str:
        return self.name


class ModelVersion(Artifact):
    registered_model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="versions")
    format = models.CharField(max_length=16, choices=ModelFormat.choices)
    #: Inputs and outputs: [{"name", "dtype", "shape"}].
    inputs = models.JSONField(default=list)
    outputs = models.JSONField(default=list)
    opset = models.JSONField(default=dict)
    ir_version = models.IntegerField(null=True, blank=True)
    producer_name = models.CharField(max_length=200, blank=True)
    producer_version = models.CharField(max_length=100, blank=True)
    class_labels = models.JSONField(null=True, blank=True)
    #: The data columns the model's input takes, in input order; jobs match data columns to them by name.
    feature_names = models.JSONField(null=True, blank=True)
    #: Where they came from: "processing" (its tabular spec), "model" (the file's metadata) or "declared".
    feature_names_source = models.CharField(max_length=16, blank=True, default="")
    #: OpenVINO IR keeps its weights in a second file (.bin) beside the graph (.xml).
    weights_sha256 = models.CharField(max_length=64, blank=True, default="")
    weights_storage_key = models.CharField(max_length=255, blank=True, default="")
    weights_size_bytes = models.BigIntegerField(null=True, blank=True)
    #: Text models: the tokenizer.json uploaded with the model.
    tokenizer_sha256 = models.CharField(max_length=64, blank=True, default="")
    tokenizer_storage_key = models.CharField(max_length=255, blank=True, default="")
    #: Declared pre- and post-processing (workers.engine.processing spec), applied by every job.
    processing = models.JSONField(null=True, blank=True)
    #: Derived versions (quantized, converted) point at the version they came from.
    parent = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="variants")
    variant = models.CharField(max_length=40, blank=True, default="")
    #: Declared the same model as another version (e.g. its ONNX and TorchScript exports), so a parity
    #: job may compare them. Deleting the linked version only drops the link: it records a claim, not data.
    same_model_as = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="same_model_links"
    )

    class Meta:
        ordering = ["registered_model__name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["registered_model", "version"], name="unique_model_version"),
            # A failed upload keeps its row (and message) but not its claim on the bytes.
            models.UniqueConstraint(
                fields=["team", "sha256", "weights_sha256"],
                condition=~models.Q(status="failed"),
                name="unique_model_bytes_per_team",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.registered_model.name} v{self.version}"


class Dataset(TeamOwned):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="unique_dataset_name_per_team")]

    def __str__(self) -> str:
        return self.name


class DatasetVersion(Artifact):
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="versions")
    format = models.CharField(max_length=16, choices=DatasetFormat.choices)
    rows = models.BigIntegerField()
    #: [{"name", "dtype", "missing"}] in file order.
    columns = models.JSONField(default=list)
    label_column = models.CharField(max_length=200, blank=True)
    #: Format-specific facts from inspection, e.g. images per class of an image-folder archive.
    extra = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["dataset__name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "version"], name="unique_dataset_version"),
            models.UniqueConstraint(
                fields=["team", "sha256"], condition=~models.Q(status="failed"), name="unique_dataset_bytes_per_team"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.dataset.name} v{self.version}"

    @property
    def column_names(self) -> list[str]:
        return [c["name"] for c in self.columns]
