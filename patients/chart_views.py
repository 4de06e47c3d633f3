"""The patient's chart: banner, encounter timeline, documents by encounter and type,
clinical data. Thin: the door, then the chart's query layer (patients.chart)."""

from django.shortcuts import render
from django.views.decorators.http import require_GET

from patients.access import Scope, access_patient
from patients.chart import build_chart


@require_GET
def chart_view(request, public_id):
    patient = access_patient(request.user, public_id, scope=Scope.CLINICAL)
    chart = build_chart(
        request.user,
        patient,
        page=request.GET.get("page"),
        show_void=request.GET.get("void") == "1",
    )
    return render(request, "patients/chart.html", {"chart": chart, "patient": patient})
