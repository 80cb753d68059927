"""Health endpoints for load balancers and orchestrators (plain JSON, no authentication, nothing secret)."""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from pipeline.readiness import checks_payload, stack_readiness


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Alive: the process answers. Touches nothing else (a database outage must not restart web processes)."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready: every part the product needs answers; 503 with the failing parts otherwise."""
    payload = checks_payload(stack_readiness())
    return JsonResponse(payload, status=200 if not payload["failing"] else 503)
