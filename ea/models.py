"""An account on the `ea` backend has an EaLink: its key (id + encrypted secret), the latest accepted push, the deals
the EA has sent (kept by ticket, for history reads), and the close commands queued for it."""

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from accounts.models import TradingAccount
from core.models import BaseModel


class EaLink(BaseModel):
    account = models.OneToOneField(TradingAccount, on_delete=models.CASCADE, related_name="ea_link")
    key_id = models.CharField(
        max_length=32, unique=True, help_text="Public key id the EA sends in X-MT5G-Key."
    )
    secret_encrypted = models.TextField(editable=False)
    secret_rotated_at = models.DateTimeField()
    fresh_for_seconds = models.PositiveIntegerField(
        default=300,
        help_text="A push older than this is a failed read (the account is not 'flat', it is unknown).",
    )
    ea_version = models.CharField(max_length=32, blank=True)
    last_push_at = models.DateTimeField(null=True, blank=True)
    last_push_server_time_msc = models.BigIntegerField(null=True, blank=True)
    latest_push = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder, editable=False)
    pushes_accepted = models.PositiveBigIntegerField(default=0)
    pushes_refused = models.PositiveBigIntegerField(default=0)
    last_refusal = models.CharField(max_length=255, blank=True)
    last_refusal_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "EA link"

    def __str__(self) -> str:
        return f"EA link of {self.account}"


class EaDeal(models.Model):
    link = models.ForeignKey(EaLink, on_delete=models.CASCADE, related_name="deals")
    ticket = models.BigIntegerField()
    position_id = models.BigIntegerField()
    time_msc = models.BigIntegerField(help_text="Trade server time, epoch milliseconds.")
    data = models.JSONField(encoder=DjangoJSONEncoder)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["link", "ticket"], name="ea_deal_unique_ticket")]
        indexes = [
            models.Index(fields=["link", "time_msc"], name="ea_deal_time"),
            models.Index(fields=["link", "position_id"], name="ea_deal_position"),
        ]

    def __str__(self) -> str:
        return f"deal {self.ticket}"


class CommandState(models.TextChoices):
    QUEUED = "queued", "Queued (waiting for the EA to fetch it)"
    FETCHED = "fetched", "Fetched by the EA"
    ANSWERED = "answered", "Answered (the EA sent order_send's result)"
    EXPIRED = "expired", "Expired without an answer"


class EaCommand(BaseModel):
    """A close order for the EA to send. Handed out once (a duplicate poll gets nothing), never after its deadline."""

    link = models.ForeignKey(EaLink, on_delete=models.CASCADE, related_name="commands")
    idempotency_key = models.CharField(max_length=64, unique=True)
    state = models.CharField(max_length=16, choices=CommandState.choices, default=CommandState.QUEUED)
    position_ticket = models.BigIntegerField()
    request = models.JSONField(encoder=DjangoJSONEncoder)
    deadline = models.DateTimeField()
    fetched_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    fetch_count = models.PositiveIntegerField(default=0)
    result = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    answered_late = models.BooleanField(default=False, help_text="The result came after the deadline.")

    class Meta:
        indexes = [models.Index(fields=["link", "state"], name="ea_command_state")]

    def __str__(self) -> str:
        return f"close {self.position_ticket} ({self.state})"
