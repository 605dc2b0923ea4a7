from django.urls import path

from . import policy_views, views

urlpatterns = [
    path("reports/", views.report_list, name="reports"),
    path("reports/new/", views.report_builder, name="report-builder"),
    path("reports/verify/", views.report_verify, name="report-verify"),
    path("reports/policy/<slug:slug>/", policy_views.report_policy, name="report-policy"),
    path("reports/<str:pk>/", views.report_detail, name="report-detail"),
    path("reports/<str:pk>/approve/", views.report_approve, name="report-approve"),
    path("reports/<str:pk>/regenerate/", views.report_regenerate, name="report-regenerate"),
]
