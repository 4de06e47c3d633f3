"""Small lookups for the dashboard templates."""

from django import template

register = template.Library()


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if mapping else None


@register.filter
def column_numeric(columns, index):
    try:
        return columns[index].numeric
    except (IndexError, TypeError):
        return False
