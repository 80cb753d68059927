from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.http import HttpRequest
from rest_framework.exceptions import NotAuthenticated
from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.models import TokenUser
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import Token

from core.readcache import principal_cached

if TYPE_CHECKING:  # the project's user model (AUTH_USER_MODEL); a type only: core imports no domain app
    from accounts.models import User


def authenticated_user(request: Request | HttpRequest) -> "User":
    """The signed-in user of a view that requires authentication (admin or IsAuthenticated API views)."""
    user = request.user
    if not isinstance(user, get_user_model()) or not user.is_authenticated:
        raise NotAuthenticated()
    return user  # type: ignore[return-value]


def _principal_fields() -> list[str]:
    """Every concrete field of the user but the password hash (cached principals never hold it)."""
    return [f.attname for f in get_user_model()._meta.concrete_fields if f.attname != "password"]


class CachedJWTAuthentication(JWTAuthentication):
    """simplejwt's JWTAuthentication (signature, expiry, an active user) with the user read from the shared cache
    while the access epoch is unchanged (core/readcache.py): no query per API request for the user. A user saved
    or moved between groups raises the epoch (accounts/signals.py), so a deactivated user is refused at once."""

    def get_user(self, validated_token: Token) -> "User | TokenUser":
        user_id = validated_token.get(api_settings.USER_ID_CLAIM)
        if user_id is None:
            return super().get_user(validated_token)  # its own error for a token without the claim
        return principal_cached(  # type: ignore[return-value]
            user_id=user_id,
            load=lambda: super(CachedJWTAuthentication, self).get_user(validated_token),
            fields=_principal_fields(),
        )
