from django.urls import path

from guards.api.views import (
    AccountGuardStatusApi,
    AlertListApi,
    CloseIntentListApi,
    GuardResetApi,
    PositionCloseApi,
    PositionsCloseAllApi,
)

urlpatterns = [
    path("accounts/<int:account_id>/guards/", AccountGuardStatusApi.as_view(), name="account-guards"),
    path("accounts/<int:account_id>/guards/reset/", GuardResetApi.as_view(), name="account-guards-reset"),
    path("accounts/<int:account_id>/close-intents/", CloseIntentListApi.as_view(), name="close-intents"),
    path(
        "accounts/<int:account_id>/positions/<int:ticket>/close/",
        PositionCloseApi.as_view(),
        name="position-close",
    ),
    path("accounts/<int:account_id>/close-all/", PositionsCloseAllApi.as_view(), name="positions-close-all"),
    path("alerts/", AlertListApi.as_view(), name="alerts"),
]
