"""The single environ.Env instance every setting is read through."""

import environ

env = environ.Env()
