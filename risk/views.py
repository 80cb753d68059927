"""/risk/: the configuration in force and its history (old → new values) for everyone; the owner edits it inline
through the same form and service as the admin."""

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect, trigger_client_event

from accounts.models import User
from core.exceptions import ApplicationError, PermissionDeniedError
from risk.forms import RiskConfigChangeForm
from risk.selectors import risk_config_current, risk_config_history
from risk.services import risk_config_update
from rules.presets import PRESETS
from rules.selectors import rule_set_list_with_usage
from rules.views import rule_set_edit_form, rule_set_new_form

HISTORY_PAGE_SIZE = 25


def _initial() -> dict[str, Any]:
    current = risk_config_current()
    return {
        "risk_percent": current.risk_percent,
        "entry_splits": current.entry_splits,
        "margin_buffer_percent": current.margin_buffer_percent,
        "max_snapshot_age_seconds": current.max_snapshot_age_seconds,
    }


def _context(request: HttpRequest, form: RiskConfigChangeForm | None = None) -> dict[str, Any]:
    user: User = request.user  # type: ignore[assignment]
    rule_sets = list(rule_set_list_with_usage())
    if user.is_owner:
        for row in rule_sets:
            row.edit_form = rule_set_edit_form(row)  # type: ignore[attr-defined]
    return {
        "current": risk_config_current(),
        "history": Paginator(risk_config_history(), HISTORY_PAGE_SIZE).get_page(request.GET.get("page")),
        "may_edit": user.is_owner,
        "form": form or RiskConfigChangeForm(initial=_initial()),
        "rule_sets": rule_sets,
        "rule_set_form": rule_set_new_form(preset=request.GET.get("preset")) if user.is_owner else None,
        "rule_set_open": request.GET.get("rule_set", ""),
        "rule_set_presets": PRESETS,
        "rule_set_preset": request.GET.get("preset", "") if request.GET.get("preset") in PRESETS else "",
    }


@require_GET
@login_required
def risk_page(request: HttpRequest) -> HttpResponse:
    return render(request, "risk/risk.html", _context(request))


@require_POST
@login_required
def risk_update(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    if not user.is_owner:
        raise PermissionDenied("Only an owner may change the risk configuration.")
    form = RiskConfigChangeForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            risk_config_update(
                actor=user,
                reason=data["reason"],
                risk_percent=data["risk_percent"],
                entry_splits=data["entry_splits"],
                margin_buffer_percent=data["margin_buffer_percent"],
                max_snapshot_age_seconds=data["max_snapshot_age_seconds"],
            )
        except PermissionDeniedError as exc:
            raise PermissionDenied(exc.message) from None
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            url = reverse("risk:risk_page")
            if request.htmx:
                return trigger_client_event(
                    HttpResponseClientRedirect(url), "toast", {"message": "New risk configuration in force."}
                )
            return redirect(url)
    template = "risk/risk.html#risk-form" if request.htmx else "risk/risk.html"
    return render(request, template, _context(request, form))
