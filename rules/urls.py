from django.urls import path

from rules import views

app_name = "rules"

urlpatterns = [
    path("sets/new/", views.rule_set_new, name="rule_set_new"),
    path("sets/create/", views.rule_set_create_view, name="rule_set_create"),
    path("sets/<int:rule_set_id>/edit/", views.rule_set_update_view, name="rule_set_update"),
    path("accounts/<int:account_id>/assign/", views.account_rule_set_assign_view, name="account_assign"),
    path(
        "accounts/<int:account_id>/close-only/lift/",
        views.account_close_only_lift_view,
        name="account_close_only_lift",
    ),
]
