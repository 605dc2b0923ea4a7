from django.urls import path

from . import apis

urlpatterns = [
    path("audit/", apis.AuditListApi.as_view(), name="api-audit"),
    path("audit/export.csv", apis.AuditExportApi.as_view(), name="api-audit-export"),
    path("audit/verify/", apis.AuditVerifyApi.as_view(), name="api-audit-verify"),
]
