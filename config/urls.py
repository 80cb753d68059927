from django.contrib import admin
from django.urls import include, path

from pipeline.views import healthz, readyz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("api/v1/", include("config.api_urls")),
    path("api/", include("core.api.fallback_urls")),
    path("", include("dashboard.urls")),
    path("divergences/", include("reconciliation.urls")),
    path("risk/", include("risk.urls")),
    path("rules/", include("rules.urls")),
    path("notifications/", include("notifications.urls")),
]

handler403 = "dashboard.views.permission_denied"
handler500 = "core.errors.server_error"  # a database outage is a 503 there too
