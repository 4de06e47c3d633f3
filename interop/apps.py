from django.apps import AppConfig


class InteropConfig(AppConfig):
    name = "interop"
    verbose_name = "Interoperability (FHIR R4)"

    def ready(self) -> None:
        # Every FHIR validation (imports, transactions, REST writes) goes faster where a
        # population repeats the same elements; see interop/validation_memo.py.
        from interop import validation_memo

        validation_memo.install()
