import pytest

from accounts.selectors import trading_account_get_for_user, trading_account_list_for_user
from accounts.services import trading_account_create
from core.exceptions import NotFoundError

pytestmark = pytest.mark.django_db


def test_trader_sees_only_their_own_accounts(trader, other_trader, support, owner):
    mine = trading_account_create(owner=trader, login=1, server="S")
    theirs = trading_account_create(owner=other_trader, login=2, server="S")
    assert list(trading_account_list_for_user(user=trader)) == [mine]
    assert set(trading_account_list_for_user(user=support)) == {mine, theirs}
    assert set(trading_account_list_for_user(user=owner)) == {mine, theirs}


def test_another_traders_account_is_not_found_rather_than_forbidden(trader, other_trader):
    theirs = trading_account_create(owner=other_trader, login=2, server="S")
    with pytest.raises(NotFoundError):
        trading_account_get_for_user(user=trader, account_id=theirs.pk)
    with pytest.raises(NotFoundError):
        trading_account_get_for_user(user=trader, account_id="not-a-number")
