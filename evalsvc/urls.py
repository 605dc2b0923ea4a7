from csp.constants import SELF, UNSAFE_INLINE
from csp.decorators import csp_replace
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from evalsvc.core.apidocs import docs_page
from evalsvc.dashboards import apis as dashboard_apis
from evalsvc.dashboards import compare as run_compare_views
from evalsvc.dashboards import runs as run_list_views
from evalsvc.dashboards import views as dashboard_views
from evalsvc.evaluations import apis as run_apis
from evalsvc.evaluations import views as run_views
from evalsvc.fleet import apis as fleet_apis
from evalsvc.fleet import views as fleet_views
from evalsvc.monitoring import apis as monitor_apis
from evalsvc.monitoring import views as monitor_views
from evalsvc.registry import apis as registry_apis
from evalsvc.registry import views as registry_views
from evalsvc.teams import apis as team_apis
from evalsvc.teams import views as team_views

api = [
    path("auth/token/", team_apis.TokenApi.as_view(), name="api-token"),
    path("teams/", team_apis.TeamListApi.as_view(), name="api-teams"),
    path("teams/<str:team>/members/", team_apis.MemberListApi.as_view(), name="api-team-members"),
    path("teams/<str:team>/members/<str:username>/", team_apis.MemberDetailApi.as_view(), name="api-team-member"),
    path("teams/<str:team>/invitations/", team_apis.TeamInvitationListApi.as_view(), name="api-team-invitations"),
    path("invitations/", team_apis.InvitationListApi.as_view(), name="api-invitations"),
    path("invitations/<str:pk>/accept/", team_apis.InvitationAcceptApi.as_view(), name="api-invitation-accept"),
    path("invitations/<str:pk>/decline/", team_apis.InvitationDeclineApi.as_view(), name="api-invitation-decline"),
    path("backends/", fleet_apis.BackendListApi.as_view(), name="api-backends"),
    path("models/<str:pk>/", registry_apis.RegisteredModelDetailApi.as_view(), name="api-model"),
    path("model-versions/", registry_apis.ModelVersionListApi.as_view(), name="api-model-versions"),
    path("model-versions/<str:pk>/", registry_apis.ModelVersionDetailApi.as_view(), name="api-model-version"),
    path(
        "model-versions/<str:pk>/download/",
        registry_apis.ModelVersionDownloadApi.as_view(),
        name="api-model-version-download",
    ),
    path("dataset-versions/", registry_apis.DatasetVersionListApi.as_view(), name="api-dataset-versions"),
    path("dataset-versions/<str:pk>/", registry_apis.DatasetVersionDetailApi.as_view(), name="api-dataset-version"),
    path(
        "dataset-versions/<str:pk>/download/",
        registry_apis.DatasetVersionDownloadApi.as_view(),
        name="api-dataset-version-download",
    ),
    path("runs/", run_apis.RunListApi.as_view(), name="api-runs"),
    path("runs/compare/", dashboard_apis.RunCompareApi.as_view(), name="api-run-compare"),
    path("runs/<str:pk>/", run_apis.RunDetailApi.as_view(), name="api-run"),
    path("runs/<str:pk>/cancel/", run_apis.RunCancelApi.as_view(), name="api-run-cancel"),
    path(
        "runs/<str:pk>/result.<str:fmt>",
        dashboard_apis.RunResultDownloadApi.as_view(),
        name="api-run-result",
    ),
    path("monitors/", monitor_apis.MonitorListApi.as_view(), name="api-monitors"),
    path("monitors/<str:pk>/", monitor_apis.MonitorDetailApi.as_view(), name="api-monitor"),
    path("monitors/<str:pk>/batches/", monitor_apis.BatchListApi.as_view(), name="api-monitor-batches"),
    path("monitors/<str:pk>/labels/", monitor_apis.LabelListApi.as_view(), name="api-monitor-labels"),
    path("monitors/<str:pk>/checks/", monitor_apis.CheckListApi.as_view(), name="api-monitor-checks"),
    path("monitors/<str:pk>/checks/<str:check>/", monitor_apis.CheckDetailApi.as_view(), name="api-monitor-check"),
    path("monitors/<str:pk>/alerts/", monitor_apis.AlertListApi.as_view(), name="api-monitor-alerts"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI's start-up script is its own request (no inline script); both UIs set
    # a few style attributes of their own, so their pages alone allow inline styles.
    path(
        "docs/",
        docs_page(
            csp_replace({"style-src": [SELF, UNSAFE_INLINE]})(
                SpectacularSwaggerSplitView.as_view(url_name="api-schema")
            )
        ),
        name="api-docs",
    ),
    path(
        "redoc/",
        docs_page(
            csp_replace({"style-src": [SELF, UNSAFE_INLINE], "worker-src": [SELF, "blob:"]})(
                SpectacularRedocView.as_view(url_name="api-schema")
            )
        ),
        name="api-redoc",
    ),
]

urlpatterns = [
    path("", dashboard_views.home, name="home"),
    # Pages without a <link rel="icon"> (the API docs) make browsers ask for /favicon.ico.
    path("favicon.ico", dashboard_views.favicon),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("models/upload/", registry_views.model_upload, name="model-upload"),
    path("models/<str:pk>/", dashboard_views.model_version_detail, name="model-version-detail"),
    path("models/<str:pk>/processing/", registry_views.model_version_processing, name="model-version-processing"),
    path("models/<str:pk>/describe/", registry_views.model_version_describe, name="model-version-describe"),
    path("datasets/upload/", registry_views.dataset_upload, name="dataset-upload"),
    path("datasets/<str:pk>/", dashboard_views.dataset_version_detail, name="dataset-version-detail"),
    path("backends/", fleet_views.backend_list, name="backends"),
    path("teams/", team_views.team_list, name="teams"),
    path("teams/<slug:slug>/", team_views.team_detail, name="team-detail"),
    path("invitations/", team_views.invitation_list, name="invitations"),
    path("invitations/<str:pk>/<str:answer>/", team_views.invitation_answer, name="invitation-answer"),
    path("monitors/", monitor_views.monitor_list, name="monitors"),
    path("monitors/new/", monitor_views.monitor_new, name="monitor-new"),
    path("monitors/<str:pk>/", monitor_views.monitor_detail, name="monitor-detail"),
    path("monitors/<str:pk>/checks/<str:check_pk>/", monitor_views.check_detail, name="monitor-check"),
    path("about/", monitor_views.about, name="about"),
    path("runs/", run_list_views.run_list, name="run-list"),
    path("runs/new/", run_views.run_submit, name="run-submit"),
    path("runs/compare/", run_compare_views.run_compare, name="run-compare"),
    path("runs/<str:pk>/", dashboard_views.run_detail, name="run-detail"),
    path("runs/<str:pk>/cancel/", run_views.run_cancel, name="run-cancel"),
    path("api/", include(api)),
    path("api/", include("evalsvc.reports.api_urls")),
    path("api/", include("evalsvc.audit.api_urls")),
    path("", include("evalsvc.reports.urls")),
    path("", include("evalsvc.audit.urls")),
    path("admin/", admin.site.urls),
]
