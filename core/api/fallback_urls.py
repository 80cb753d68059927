"""Anything under /api/ that no route matched: the JSON error shape, never Django's HTML 404 page."""

from django.urls import re_path

from core.api.views import api_not_found

urlpatterns = [re_path(r"^[\s\S]*$", api_not_found, name="api-not-found")]  # newlines too
