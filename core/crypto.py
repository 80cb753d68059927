"""Encryption at rest for MT5 credentials (Fernet: AES-128-CBC + HMAC-SHA256, with key rotation)."""

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class CredentialsKeyError(ImproperlyConfigured):
    pass


@cache
def credentials_cipher() -> MultiFernet:
    keys = list(settings.MT5_CREDENTIALS_KEYS)
    if not keys:
        if not settings.DEBUG:
            raise CredentialsKeyError(
                "MT5_CREDENTIALS_KEYS is not set. Generate a key with "
                '`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"` '
                "and set it in the environment; credentials are never stored unencrypted."
            )
        keys = [_development_key()]
    try:
        return MultiFernet([Fernet(key.encode() if isinstance(key, str) else key) for key in keys])
    except (ValueError, TypeError) as exc:
        raise CredentialsKeyError(
            "MT5_CREDENTIALS_KEYS holds a malformed key: each must be a 32-byte url-safe base64 Fernet key."
        ) from exc


def _development_key() -> str:
    """A per-checkout key under var/, created once, so development needs no setup and no key is committed."""
    path = settings.MT5_CREDENTIALS_DEV_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Fernet.generate_key().decode())
        path.chmod(0o600)
    return path.read_text().strip()


def encrypt_secret(plain: str) -> str:
    return credentials_cipher().encrypt(plain.encode()).decode()


def decrypt_secret(token: str) -> str:
    try:
        return credentials_cipher().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise CredentialsKeyError(
            "A stored credential cannot be decrypted with MT5_CREDENTIALS_KEYS (wrong or rotated-out key)."
        ) from exc
