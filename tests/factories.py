from __future__ import annotations

from typing import Any

import factory
from django.contrib.auth import get_user_model

from evalsvc.teams.models import Membership, Role, Team


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("pw-for-tests-1")


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Team {n}")
    slug = factory.Sequence(lambda n: f"team-{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    team = factory.SubFactory(TeamFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.VIEWER


def make_world() -> dict[str, Any]:
    alpha = TeamFactory(name="Alpha", slug="alpha")
    gamma = TeamFactory(name="Gamma", slug="gamma")
    alice = UserFactory(username="alice")
    bob = UserFactory(username="bob")
    carol = UserFactory(username="carol")
    MembershipFactory(team=alpha, user=alice, role=Role.OWNER)
    MembershipFactory(team=alpha, user=bob, role=Role.VIEWER)
    MembershipFactory(team=gamma, user=carol, role=Role.OWNER)
    return {"alpha": alpha, "gamma": gamma, "alice": alice, "bob": bob, "carol": carol}
