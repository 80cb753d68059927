from django.urls import path

from accounts.api.views import AccountDetailApi, AccountListApi, AccountSnapshotHistoryApi, MeApi

urlpatterns = [
    path("me/", MeApi.as_view(), name="me"),
    path("accounts/", AccountListApi.as_view(), name="accounts"),
    path("accounts/<int:account_id>/", AccountDetailApi.as_view(), name="account"),
    path(
        "accounts/<int:account_id>/snapshots/", AccountSnapshotHistoryApi.as_view(), name="account-snapshots"
    ),
]
