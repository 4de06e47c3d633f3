from django.conf import settings
from django.urls import reverse

from accounts.roles import roles_of
from recordroom.navigation import items_for


def navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": [], "user_roles": []}
    items = [
        {"label": item.label, "url": reverse(item.url_name), "name": item.url_name}
        for item in items_for(user)
    ]
    # The entry whose address is the longest prefix of this page is the current one.
    current = request.path
    matches = [
        i
        for i in items
        if i["url"] == current or (i["url"] != "/" and current.startswith(i["url"]))
    ]
    best = max(matches, key=lambda i: len(i["url"]), default=None)
    for item in items:
        item["current"] = item is best
    return {
        "nav_items": items,
        "user_roles": roles_of(user),
        "idle_minutes": settings.SESSION_IDLE_MINUTES,
    }
