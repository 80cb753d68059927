"""JWT token endpoints that go through the login lockout (django-axes): the token view authenticates with the
request, so failures are counted and audited like the admin's; a locked-out pair gets 429 + Retry-After."""

from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_credentials
from django.contrib.auth.signals import user_logged_in
from rest_framework import status
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from core.lockout import login_locked_out


class TokenObtainApi(TokenObtainPairView):
    """simplejwt passes `request` to authenticate(); axes flags the request when the attempt locks the pair out."""

    throttle_scope = "token"

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        try:
            serializer.is_valid(raise_exception=True)
        except AuthenticationFailed:
            username = request.data.get("username") if hasattr(request.data, "get") else None
            credentials = get_credentials(username=username)
            if getattr(request, "axes_locked_out", False) or AxesProxyHandler.is_locked(request, credentials):
                raise login_locked_out() from None
            raise
        except TokenError as exc:
            raise InvalidToken(exc.args[0]) from exc
        # A token is a login: the signal resets the failure count (AXES_RESET_ON_SUCCESS), writes the access log
        # and updates last_login, as the admin's login does.
        user_logged_in.send(sender=type(serializer.user), request=request, user=serializer.user)
        return Response(serializer.validated_data, status=status.HTTP_200_OK)


class TokenRefreshApi(TokenRefreshView):
    throttle_scope = "token"
