from django.urls import path

from reconciliation import views

app_name = "reconciliation"

urlpatterns = [
    path("", views.divergences_page, name="divergences_page"),
    path("acknowledge/", views.divergences_bulk_acknowledge, name="divergences_bulk_acknowledge"),
    path("<int:event_id>/", views.divergence_detail, name="divergence_detail"),
    path("<int:event_id>/acknowledge/", views.divergence_acknowledge, name="divergence_acknowledge"),
    path("<int:event_id>/resolve/", views.divergence_resolve, name="divergence_resolve"),
]
