from django.urls import path

from . import apis

urlpatterns = [
    path("reports/", apis.ReportListApi.as_view(), name="api-reports"),
    # Both spellings: the verify endpoint is documented without the slash.
    path("reports/verify", apis.ReportVerifyApi.as_view(), name="api-report-verify"),
    path("reports/verify/", apis.ReportVerifySlashApi.as_view()),
    path("reports/<str:pk>/", apis.ReportDetailApi.as_view(), name="api-report"),
    path("reports/<str:pk>/pdf/", apis.ReportPdfApi.as_view(), name="api-report-pdf"),
    path("reports/<str:pk>/html/", apis.ReportHtmlApi.as_view(), name="api-report-html"),
    path("reports/<str:pk>/json/", apis.ReportJsonApi.as_view(), name="api-report-json"),
    path("reports/<str:pk>/approve/", apis.ReportApproveApi.as_view(), name="api-report-approve"),
    path("reports/<str:pk>/regenerate/", apis.ReportRegenerateApi.as_view(), name="api-report-regenerate"),
    path("teams/<str:team>/report-policy/", apis.ReportPolicyApi.as_view(), name="api-report-policy"),
]
