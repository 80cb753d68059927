from django.urls import path

from risk import views

app_name = "risk"

urlpatterns = [
    path("", views.risk_page, name="risk_page"),
    path("edit/", views.risk_update, name="risk_update"),
]
