from django.urls import path

from notifications import views

app_name = "notifications"

urlpatterns = [
    path("", views.notifications_page, name="page"),
    path("deliveries/", views.notifications_deliveries, name="deliveries"),
    path("preferences/", views.notifications_preferences_save, name="preferences_save"),
    path("telegram/code/", views.notifications_telegram_code, name="telegram_code"),
]
