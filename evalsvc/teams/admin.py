from django.contrib import admin

from .models import Membership, Team


class MembershipInline(admin.TabularInline):
    """Read-only here: membership changes go through the members API so that each is audited."""

    model = Membership
    extra = 0
    can_delete = False
    readonly_fields = ("user", "role", "created_at")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "created_at")
    inlines = [MembershipInline]
