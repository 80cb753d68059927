from django.contrib import admin
from django.urls import include, path
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/auth/token/", TokenObtainPairView.as_view(), name="token_obtain_pair"),
    path("api/auth/token/refresh/", TokenRefreshView.as_view(), name="token_refresh"),
    path("api/risk/", include(("risk.api.urls", "risk"), namespace="risk-api")),
    path(
        "api/reconciliation/",
        include(("reconciliation.api.urls", "reconciliation"), namespace="reconciliation-api"),
    ),
    path("api/v1/ea/", include(("ea.api.urls", "ea"), namespace="ea-api")),
    path("", include("core.urls")),
    path("", include("dashboard.urls")),
    path("divergences/", include("reconciliation.urls")),
    path("risk/", include("risk.urls")),
]

handler403 = "dashboard.views.permission_denied"
