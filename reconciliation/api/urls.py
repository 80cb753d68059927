from django.urls import path

from reconciliation.api.views import (
    BotTradeCloseApi,
    BotTradeRegisterApi,
    EventAcknowledgeApi,
    EventListApi,
    EventResolveApi,
)

urlpatterns = [
    path("accounts/<int:account_id>/bot-trades/", BotTradeRegisterApi.as_view(), name="bot-trades"),
    path("accounts/<int:account_id>/bot-trades/close/", BotTradeCloseApi.as_view(), name="bot-trade-close"),
    path("events/", EventListApi.as_view(), name="events"),
    path("events/<int:event_id>/acknowledge/", EventAcknowledgeApi.as_view(), name="event-acknowledge"),
    path("events/<int:event_id>/resolve/", EventResolveApi.as_view(), name="event-resolve"),
]
