from django.urls import path

from reconciliation.api.views import (
    AccountPositionsApi,
    AccountReconciliationApi,
    BotTradeCloseApi,
    BotTradeRegisterApi,
    EventAcknowledgeApi,
    EventDetailApi,
    EventListApi,
    EventResolveApi,
)

urlpatterns = [
    path("accounts/<int:account_id>/bot-trades/", BotTradeRegisterApi.as_view(), name="bot-trades"),
    path("accounts/<int:account_id>/bot-trades/close/", BotTradeCloseApi.as_view(), name="bot-trade-close"),
    path("accounts/<int:account_id>/positions/", AccountPositionsApi.as_view(), name="positions"),
    path(
        "accounts/<int:account_id>/reconciliation/", AccountReconciliationApi.as_view(), name="reconciliation"
    ),
    path("events/", EventListApi.as_view(), name="events"),
    path("events/<int:event_id>/", EventDetailApi.as_view(), name="event"),
    path("events/<int:event_id>/acknowledge/", EventAcknowledgeApi.as_view(), name="event-acknowledge"),
    path("events/<int:event_id>/resolve/", EventResolveApi.as_view(), name="event-resolve"),
]
