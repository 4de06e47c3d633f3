from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and roles"

    def ready(self):
        from accounts.sync import sync_roles_after_migrate

        post_migrate.connect(sync_roles_after_migrate, sender=self)
