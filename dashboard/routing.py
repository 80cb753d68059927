from django.urls import path

from dashboard.consumers import LivePagesConsumer

websocket_urlpatterns = [
    path("ws/pages/", LivePagesConsumer.as_asgi()),
]
