"""Who is asking: the user types that services, selectors and views name.

The service uses Django's own ``User`` model. A request's user is a signed-in
``User`` or an ``AnonymousUser``; selectors that answer anonymous visitors
(with nothing) take :data:`AnyUser`, and everything that acts on behalf of
someone takes a ``User``, which views behind a sign-in get from
:func:`signed_in_user`.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from rest_framework.request import Request

__all__ = ["AnyUser", "User", "signed_in_user"]

#: A request's user: signed in or anonymous.
AnyUser = User | AnonymousUser


def signed_in_user(request: HttpRequest | Request) -> User:
    """The signed-in user of a request that requires one (a 403 for an anonymous visitor)."""
    user = request.user
    if isinstance(user, AnonymousUser) or not user.is_authenticated:
        raise PermissionDenied("sign in first")
    return user
