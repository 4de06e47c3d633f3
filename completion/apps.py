from django.apps import AppConfig


class CompletionConfig(AppConfig):
    name = "completion"
    verbose_name = "Chart completion"

    def ready(self) -> None:
        from completion import hooks  # noqa: F401  (connects the signal receivers)
