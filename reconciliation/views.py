"""The divergence inspector (/divergences/): list with filters, a row that opens in place, acknowledge / resolve
inline, bulk acknowledge. Reads through selectors, writes through reconciliation.services.events."""

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import trigger_client_event

from accounts.models import User
from core.exceptions import ApplicationError, NotFoundError
from reconciliation.forms import EventFilterForm, EventNoteForm, EventResolveForm
from reconciliation.models import EventState, ReconciliationEvent
from reconciliation.selectors import (
    event_comparison,
    event_get_for_user,
    event_list_filtered,
    event_list_for_user,
    event_live_position,
)
from reconciliation.services import event_acknowledge, event_resolve

PAGE_SIZE = 50
HANDLE_EVENTS_REASON = "Only owners and support staff may acknowledge or resolve divergences."


def _event_for(request: HttpRequest, event_id: int) -> ReconciliationEvent:
    try:
        return event_get_for_user(user=request.user, event_id=event_id)  # type: ignore[arg-type]
    except NotFoundError as exc:
        raise Http404(exc.message) from None


def _require_handler(user: User) -> None:
    if not user.is_operator:
        raise PermissionDenied(HANDLE_EVENTS_REASON)


def divergence_row_context(
    *, user: User, event_id: int, open_detail: bool = False, **extra: Any
) -> dict[str, Any] | None:
    event = (
        event_list_for_user(user=user)
        .select_related("account", "bot_trade", "acknowledged_by", "resolved_by")
        .filter(pk=event_id)
        .first()
    )
    if event is None:
        return None
    context: dict[str, Any] = {
        "event": event,
        "may_handle": user.is_operator,
        "open_detail": open_detail,
        **extra,
    }
    if open_detail:
        position = event_live_position(event=event)
        context.update(
            position=position,
            comparison=event_comparison(event=event, position=position),
            resolve_form=extra.get("resolve_form") or EventResolveForm(),
        )
    return context


# A re-read of the table (after a socket reconnect) names the rows whose detail is open, so they come back open: a
# support user halfway through a resolution note keeps the panel (and the note: its textarea is hx-preserve'd).
OPEN_DETAIL_PARAM = "open_detail"


def _open_rows(request: HttpRequest, *, user: User, events: Any) -> dict[int, str]:
    """The rows of this page the request names as open, rendered open (at most a page's worth)."""
    wanted = {int(raw) for raw in request.GET.getlist(OPEN_DETAIL_PARAM)[:PAGE_SIZE] if raw.isdigit()}
    rows: dict[int, str] = {}
    if not wanted:
        return rows
    for event in events:
        if event.pk in wanted:
            context = divergence_row_context(user=user, event_id=event.pk, open_detail=True)
            if context is not None:
                rows[event.pk] = render_to_string(
                    "reconciliation/partials/_divergence_row.html", context, request=request
                )
    return rows


@require_GET
@login_required
def divergences_page(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    form = EventFilterForm(request.GET or {"state": "active"})
    filters = form.cleaned_data if form.is_valid() else {"state": "active"}
    events = event_list_filtered(
        user=user,
        kind=filters.get("kind") or "",
        state=filters.get("state") or "",
        account_id=filters.get("account"),
        symbol=filters.get("symbol") or "",
        older_than=filters.get("older_than") or "",
        newer_than=filters.get("newer_than") or "",
    )
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    # The open rows are the page's own state, sent back by its re-read: never part of its address.
    query.pop(OPEN_DETAIL_PARAM, None)
    resync = query.urlencode()
    query.pop("page", None)
    context = {
        "form": form,
        "page": page,
        "query": query.urlencode(),
        "resync_url": f"{request.path}?{resync}" if resync else request.path,
        "open_rows": _open_rows(request, user=user, events=page.object_list),
        "may_handle": user.is_operator,
        "filtered": bool(resync),
    }
    template = (
        "reconciliation/divergences.html#divergence-table"
        if request.htmx
        else "reconciliation/divergences.html"
    )
    return render(request, template, context)


@require_GET
@login_required
def divergence_detail(request: HttpRequest, event_id: int) -> HttpResponse:
    _event_for(request, event_id)
    open_detail = request.GET.get("open", "1") == "1"
    context = divergence_row_context(user=request.user, event_id=event_id, open_detail=open_detail)  # type: ignore[arg-type]
    if not request.htmx:
        return redirect(
            f"{reverse('reconciliation:divergences_page')}?account={context['event'].account_id}#event-{event_id}"
        )  # type: ignore[index]
    return render(request, "reconciliation/partials/_divergence_row.html", context)


def _row_response(request: HttpRequest, event_id: int, *, message: str = "", **extra: Any) -> HttpResponse:
    if not request.htmx:
        return redirect(reverse("reconciliation:divergences_page"))
    context = divergence_row_context(user=request.user, event_id=event_id, open_detail=True, **extra)  # type: ignore[arg-type]
    response = render(request, "reconciliation/partials/_divergence_row.html", context)
    return trigger_client_event(response, "toast", {"message": message}) if message else response


@require_POST
@login_required
def divergence_acknowledge(request: HttpRequest, event_id: int) -> HttpResponse:
    event = _event_for(request, event_id)
    _require_handler(request.user)  # type: ignore[arg-type]
    form = EventNoteForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    try:
        event_acknowledge(event=event, actor=request.user, note=note)  # type: ignore[arg-type]
    except ApplicationError as exc:
        return _row_response(request, event_id, error=exc.message)
    return _row_response(request, event_id, message="Acknowledged.")


@require_POST
@login_required
def divergence_resolve(request: HttpRequest, event_id: int) -> HttpResponse:
    event = _event_for(request, event_id)
    _require_handler(request.user)  # type: ignore[arg-type]
    form = EventResolveForm(request.POST)
    if not form.is_valid():
        return _row_response(request, event_id, resolve_form=form)
    try:
        event_resolve(event=event, actor=request.user, note=form.cleaned_data["note"])  # type: ignore[arg-type]
    except ApplicationError as exc:
        form.add_error(None, exc.message)
        return _row_response(request, event_id, resolve_form=form)
    return _row_response(request, event_id, message="Resolved.")


@require_POST
@login_required
def divergences_bulk_acknowledge(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    _require_handler(user)
    ids = [int(raw) for raw in request.POST.getlist("events") if raw.isdigit()]
    events = list(event_list_for_user(user=user).filter(pk__in=ids, state=EventState.OPEN))
    for event in events:
        event_acknowledge(event=event, actor=user)
    if events:
        messages.success(request, f"{len(events)} divergence(s) acknowledged.")
    else:
        messages.error(request, "Tick at least one open divergence to acknowledge.")
    query = request.POST.get("query", "")
    return redirect(f"{reverse('reconciliation:divergences_page')}{'?' + query if query else ''}")
