from django.urls import path

from risk.api.views import RiskConfigDetailApi, RiskConfigHistoryListApi, TradeSetupSizeApi

urlpatterns = [
    path("config/", RiskConfigDetailApi.as_view(), name="config"),
    path("config/history/", RiskConfigHistoryListApi.as_view(), name="config-history"),
    path("accounts/<int:account_id>/size/", TradeSetupSizeApi.as_view(), name="trade-setup-size"),
]
