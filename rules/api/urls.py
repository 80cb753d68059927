from django.urls import path

from rules.api.views import (
    AccountCloseOnlyLiftApi,
    AccountRuleSetApi,
    AccountRuleSetHistoryApi,
    RuleSetDetailApi,
    RuleSetHistoryApi,
    RuleSetListApi,
    RuleSetPresetListApi,
)

urlpatterns = [
    path(
        "accounts/<int:account_id>/close-only/lift/",
        AccountCloseOnlyLiftApi.as_view(),
        name="close-only-lift",
    ),
    path("rule-sets/", RuleSetListApi.as_view(), name="rule-sets"),
    path("rule-sets/presets/", RuleSetPresetListApi.as_view(), name="presets"),
    path("rule-sets/<int:rule_set_id>/", RuleSetDetailApi.as_view(), name="rule-set"),
    path("rule-sets/<int:rule_set_id>/history/", RuleSetHistoryApi.as_view(), name="rule-set-history"),
    path("accounts/<int:account_id>/rule-set/", AccountRuleSetApi.as_view(), name="account-rule-set"),
    path(
        "accounts/<int:account_id>/rule-set/history/",
        AccountRuleSetHistoryApi.as_view(),
        name="account-rule-set-history",
    ),
]
