from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.http import HttpRequest
from rest_framework.exceptions import NotAuthenticated
from rest_framework.request import Request

if TYPE_CHECKING:  # the project's user model (AUTH_USER_MODEL); a type only: core imports no domain app
    from accounts.models import User


def authenticated_user(request: Request | HttpRequest) -> "User":
    """The signed-in user of a view that requires authentication (admin or IsAuthenticated API views)."""
    user = request.user
    if not isinstance(user, get_user_model()) or not user.is_authenticated:
        raise NotAuthenticated()
    return user  # type: ignore[return-value]
