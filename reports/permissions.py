from django.db import models


class ReportsPermission(models.TextChoices):
    VIEW_HOSPITAL_STATISTICS = (
        "reports.view_hospital_statistics",
        "See hospital statistics: census, length of stay, occupancy, mortality, readmissions",
    )
    VIEW_DEPARTMENT_STATISTICS = (
        "reports.view_department_statistics",
        "See the HIM department's statistics: completion, coding, ROI, MPI, audit",
    )
    EXPORT_PATIENT_ROWS = (
        "reports.export_patient_rows",
        "Export statistics with patient-level rows (audited)",
    )
    MANAGE_BEDS = "reports.manage_beds", "Edit bed counts per unit and the readmission rule"
