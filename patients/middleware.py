from django.shortcuts import redirect

from patients.access import RestrictedRecord


class RestrictedRecordMiddleware:
    """A view that meets a restricted record (patients.access.RestrictedRecord, already
    audited) sends the user to the restriction notice, where break-the-glass is offered."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, RestrictedRecord):
            return redirect("patients:restricted", public_id=exception.patient.public_id)
        return None
