import pytest
from django.test import Client


@pytest.fixture
def login_client():
    def make(user) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make
