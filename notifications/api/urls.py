from django.urls import path

from notifications.api.views import NotificationListApi, NotificationPreferencesApi, TelegramLinkCodeCreateApi

urlpatterns = [
    path("", NotificationListApi.as_view(), name="list"),
    path("preferences/", NotificationPreferencesApi.as_view(), name="preferences"),
    path("telegram/link-code/", TelegramLinkCodeCreateApi.as_view(), name="telegram-link-code"),
]
