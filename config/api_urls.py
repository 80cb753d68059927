"""Version 1 of the client API, mounted at /api/v1/. Every app contributes its routes; names are namespaced."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from accounts.api.auth import TokenObtainApi, TokenRefreshApi

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("auth/token/", TokenObtainApi.as_view(), name="token_obtain_pair"),
    path("auth/token/refresh/", TokenRefreshApi.as_view(), name="token_refresh"),
    path("", include(("accounts.api.urls", "accounts"), namespace="accounts-api")),
    path("", include(("reconciliation.api.urls", "reconciliation"), namespace="reconciliation-api")),
    path("", include(("guards.api.urls", "guards"), namespace="guards-api")),
    path("risk/", include(("risk.api.urls", "risk"), namespace="risk-api")),
    path("rules/", include(("rules.api.urls", "rules"), namespace="rules-api")),
    path("ea/", include(("ea.api.urls", "ea"), namespace="ea-api")),
    path(
        "notifications/", include(("notifications.api.urls", "notifications"), namespace="notifications-api")
    ),
]
