from django.db import models


class AccountsPermission(models.TextChoices):
    MANAGE_USERS = "accounts.manage_users", "Manage users, roles and log-in security"
    VIEW_USERS = "accounts.view_users", "See the list of users"
