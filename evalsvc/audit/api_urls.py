from django.urls import path

from . import apis

urlpatterns = [
    path("audit/", apis.AuditListApi.as_view(), name="api-audit"),
    path("audit/sign-ins/", apis.AuditSignInListApi.as_view(), name="api-audit-sign-ins"),
    path("audit/export.csv", apis.AuditExportApi.as_view(), name="api-audit-export"),
    path("audit/verify/", apis.AuditVerifyApi.as_view(), name="api-audit-verify"),
]
