"""Writes of the rules app: rule sets and assignments (`config`), the live evaluation (`live`)."""

from rules.services.config import (
    account_rule_set_assign,
    rule_set_create,
    rule_set_update,
    rule_set_validate,
)
from rules.services.live import (
    RulesOutcome,
    account_rules_close_only_lift,
    account_rules_observe,
)

__all__ = [
    "RulesOutcome",
    "account_rule_set_assign",
    "account_rules_close_only_lift",
    "account_rules_observe",
    "rule_set_create",
    "rule_set_update",
    "rule_set_validate",
]
