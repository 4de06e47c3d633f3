from django.db import models


class EncountersPermission(models.TextChoices):
    MANAGE = "encounters.manage", "Register, admit, transfer, discharge and correct encounters"
