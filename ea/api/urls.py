from django.urls import path

from ea.api import views

app_name = "ea"

# The paths are part of the protocol (integrations/mt5/ea/protocol.py); a test checks they agree.
urlpatterns = [
    path("push/", views.ea_push, name="push"),
    path("commands/", views.ea_commands, name="commands"),
    path("commands/<int:command_id>/result/", views.ea_command_result, name="command-result"),
]
