from django.apps import AppConfig


class RecordRoomConfig(AppConfig):
    name = "recordroom"
    verbose_name = "RecordRoom"
