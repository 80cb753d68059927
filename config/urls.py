from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("config.api_urls")),
    path("api/", include("core.api.fallback_urls")),
    path("", include("core.urls")),
]
