"""The project's URLs plus `bench/bare/` (and `bench/bare-async/`): the same JSON as the cached read, returned from
memory by a bare view."""

import json
import os

from django.http import HttpRequest, HttpResponse
from django.urls import path

from config.urls import urlpatterns as project_urlpatterns

_BODY = json.dumps(json.loads(open(os.environ["BENCH_API_BARE_JSON"]).read())).encode()  # noqa: SIM115


def bare(request: HttpRequest) -> HttpResponse:
    return HttpResponse(_BODY, content_type="application/json")


async def bare_async(request: HttpRequest) -> HttpResponse:
    """The same, as an async view (no thread for the view; the middleware still hops as for any view)."""
    return HttpResponse(_BODY, content_type="application/json")


urlpatterns = [path("bench/bare/", bare), path("bench/bare-async/", bare_async), *project_urlpatterns]
