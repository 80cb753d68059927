from django.urls import path

from dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.overview_page, name="overview_page"),
    path("login/", views.LoginPage.as_view(), name="login"),
    path("logout/", views.LogoutPage.as_view(), name="logout"),
    path("accounts/<int:account_id>/", views.account_page, name="account_page"),
    path("accounts/<int:account_id>/live/", views.account_positions_fragment, name="account_live"),
    path("accounts/<int:account_id>/chart/", views.account_chart, name="account_chart"),
    path("accounts/<int:account_id>/reset/", views.account_guard_reset, name="account_guard_reset"),
    path("banner/", views.guard_banner_fragment, name="guard_banner"),
]
