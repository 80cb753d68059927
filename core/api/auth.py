from typing import TYPE_CHECKING

from django.http import HttpRequest
from rest_framework.exceptions import NotAuthenticated
from rest_framework.request import Request

if TYPE_CHECKING:
    from accounts.models import User


def authenticated_user(request: Request | HttpRequest) -> "User":
    """The signed-in user of a view that requires authentication (admin or IsAuthenticated API views)."""
    from accounts.models import User

    user = request.user
    if not isinstance(user, User) or not user.is_authenticated:
        raise NotAuthenticated()
    return user
