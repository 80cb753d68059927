import logging

import pytest
from django.core.exceptions import ImproperlyConfigured

from accounts.models import TradingAccount
from accounts.services import trading_account_create, trading_account_set_password
from core import crypto

pytestmark = pytest.mark.django_db

SECRET = "Sup3r-Secret-MT5-pass!"


def test_stored_value_is_not_the_password_and_decrypts_back(trader):
    account = trading_account_create(owner=trader, login=4242, server="Broker-Demo", password=SECRET)
    stored = TradingAccount.objects.values_list("password_encrypted", flat=True).get(pk=account.pk)
    assert stored
    assert SECRET not in stored
    assert crypto.decrypt_secret(stored) == SECRET


def test_password_is_never_logged(trader, caplog):
    caplog.set_level(logging.DEBUG)
    account = trading_account_create(owner=trader, login=4243, server="Broker-Demo", password=SECRET)
    trading_account_set_password(account=account, password=SECRET + "2")
    assert caplog.records  # the services do log what they did...
    assert SECRET not in caplog.text  # ...but never the secret


def test_password_is_not_in_repr_or_str(trader):
    account = trading_account_create(owner=trader, login=4244, server="Broker-Demo", password=SECRET)
    assert SECRET not in repr(account)
    assert SECRET not in str(account)


def test_missing_key_with_debug_off_is_a_clear_startup_error(settings):
    settings.MT5_CREDENTIALS_KEYS = []
    settings.DEBUG = False
    crypto.credentials_cipher.cache_clear()
    try:
        with pytest.raises(ImproperlyConfigured, match="MT5_CREDENTIALS_KEYS is not set"):
            crypto.credentials_cipher()
    finally:
        crypto.credentials_cipher.cache_clear()


def test_malformed_key_is_a_clear_startup_error(settings):
    settings.MT5_CREDENTIALS_KEYS = ["not-a-fernet-key"]
    crypto.credentials_cipher.cache_clear()
    try:
        with pytest.raises(ImproperlyConfigured, match="malformed key"):
            crypto.credentials_cipher()
    finally:
        crypto.credentials_cipher.cache_clear()


def test_wrong_key_never_yields_plain_text(settings, trader):
    account = trading_account_create(owner=trader, login=4245, server="Broker-Demo", password=SECRET)
    settings.MT5_CREDENTIALS_KEYS = ["aGVsbG8taGVsbG8taGVsbG8taGVsbG8taGVsbG8tMTI="]
    crypto.credentials_cipher.cache_clear()
    try:
        with pytest.raises(ImproperlyConfigured, match="cannot be decrypted"):
            crypto.decrypt_secret(account.password_encrypted)
    finally:
        crypto.credentials_cipher.cache_clear()


def test_rotated_keys_still_decrypt_old_values(settings, trader):
    account = trading_account_create(owner=trader, login=4246, server="Broker-Demo", password=SECRET)
    old_key = settings.MT5_CREDENTIALS_KEYS[0]
    settings.MT5_CREDENTIALS_KEYS = ["aGVsbG8taGVsbG8taGVsbG8taGVsbG8taGVsbG8tMTI=", old_key]
    crypto.credentials_cipher.cache_clear()
    try:
        assert crypto.decrypt_secret(account.password_encrypted) == SECRET
    finally:
        crypto.credentials_cipher.cache_clear()


def test_development_key_is_generated_once_under_var(settings, tmp_path):
    settings.MT5_CREDENTIALS_KEYS = []
    settings.DEBUG = True
    settings.MT5_CREDENTIALS_DEV_KEY_FILE = tmp_path / "dev.key"
    crypto.credentials_cipher.cache_clear()
    try:
        token = crypto.encrypt_secret(SECRET)
        crypto.credentials_cipher.cache_clear()
        assert crypto.decrypt_secret(token) == SECRET
        assert (tmp_path / "dev.key").stat().st_mode & 0o077 == 0
    finally:
        crypto.credentials_cipher.cache_clear()
