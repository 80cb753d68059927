"""Cache invalidation (the one use of signals here): who may see which account is cached by the API's reads
(core/readcache.py, the access epoch). Anything that can change it raises the epoch: a user saved (active flag,
superuser, anything but the login time), deleted, or moved between groups (roles are groups); a group renamed or
deleted; an account whose owner may have changed, or deleted. Snapshot and status saves name their fields and
leave the owner alone, so the sync never raises it."""

from typing import Any

from django.contrib.auth.models import Group
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from accounts.models import TradingAccount, User
from core.readcache import access_epoch_bump

_LOGIN_ONLY = frozenset({"last_login"})


@receiver(post_save, sender=User, dispatch_uid="access-epoch-user-saved")
def _user_saved(sender: Any, instance: User, created: bool, update_fields: Any = None, **kwargs: Any) -> None:
    if created or (update_fields is not None and frozenset(update_fields) <= _LOGIN_ONLY):
        return
    access_epoch_bump()


@receiver(post_save, sender=TradingAccount, dispatch_uid="access-epoch-account-saved")
def _account_saved(
    sender: Any, instance: TradingAccount, created: bool, update_fields: Any = None, **kwargs: Any
) -> None:
    if created or (update_fields is not None and not {"owner", "owner_id"} & set(update_fields)):
        return
    access_epoch_bump()


@receiver(post_save, sender=Group, dispatch_uid="access-epoch-group-saved")
@receiver(post_delete, sender=Group, dispatch_uid="access-epoch-group-deleted")
@receiver(post_delete, sender=User, dispatch_uid="access-epoch-user-deleted")
@receiver(post_delete, sender=TradingAccount, dispatch_uid="access-epoch-account-deleted")
def _deleted_or_group_changed(sender: Any, **kwargs: Any) -> None:
    access_epoch_bump()


@receiver(m2m_changed, sender=User.groups.through, dispatch_uid="access-epoch-user-groups")
def _groups_changed(sender: Any, action: str, **kwargs: Any) -> None:
    if action in ("post_add", "post_remove", "post_clear"):
        access_epoch_bump()
