from __future__ import annotations

import uuid

from django.db import models


class UUIDModel(models.Model):
    """Rows addressed by random ids: nothing to enumerate across teams."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        abstract = True


#: A row's key as services take it: a UUID, or its text (from a URL, a form or a task's arguments).
Pk = uuid.UUID | str
