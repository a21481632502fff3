import pytest


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    """Test users log in with a password; the production hasher's 10^6 rounds cost ~0.5 s."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
