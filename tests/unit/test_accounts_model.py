"""Account registry values without a database: trail roots, registration rules, the admission rule, API key shape."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas.events import LogEntry, Rejected
from streams.accounts import AccountsError, Admission, TrailLocation
from streams.accounts.apikeys import _KEY
from streams.accounts.model import check_registration
from tests.integration.ctgen import entries, run_instances


def test_trail_roots_follow_cloudtrail_key_layouts() -> None:
    assert TrailLocation(bucket="b").account_root("111122223333") == "AWSLogs/111122223333/"
    assert TrailLocation(bucket="b", prefix="/logs/ct/").account_root("111122223333") == "logs/ct/AWSLogs/111122223333/"
    org = TrailLocation(bucket="b", org_id="o-abcdefghij")
    assert org.account_root("111122223333") == "AWSLogs/o-abcdefghij/111122223333/"


@pytest.mark.parametrize(
    ("kwargs", "auth"),
    [
        ({}, "none"),
        ({"access_key_id": "AKIAEXAMPLEKEY12WXYZ", "secret_access_key": "s"}, "access_key"),
        ({"role_arn": "arn:aws:iam::444455556666:role/dd0c-cost-reader"}, "role"),
        ({"role_arn": "arn:aws-us-gov:iam::444455556666:role/path/r", "external_id": "xy"}, "role"),
    ],
)
def test_the_auth_kind_follows_from_what_is_given(kwargs: dict[str, str], auth: str) -> None:
    full = {"access_key_id": None, "secret_access_key": None, "role_arn": None, "external_id": None} | kwargs
    assert check_registration("111122223333", trail=TrailLocation(), **full) == auth


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"access_key_id": "AKIAEXAMPLEKEY12WXYZ"}, "needs both"),
        ({"external_id": "abc"}, "only goes with a role ARN"),
        ({"access_key_id": "lower-case-key-id", "secret_access_key": "s"}, "upper-case letters and digits"),
    ],
)
def test_bad_registrations_say_what_is_wrong(kwargs: dict[str, str], message: str) -> None:
    full = {"access_key_id": None, "secret_access_key": None, "role_arn": None, "external_id": None} | kwargs
    with pytest.raises(AccountsError, match=message):
        check_registration("111122223333", trail=TrailLocation(), **full)


def test_a_tenant_without_accounts_admits_all_and_one_with_accounts_only_those() -> None:
    at = datetime(2024, 5, 1, tzinfo=UTC)
    ours, theirs = entries([run_instances(1, at=at), run_instances(2, at=at, account="444455556666")], tenant="acme")
    assert Admission("acme", None).check(theirs) is theirs
    closed = Admission("acme", frozenset({"111122223333"}))
    assert closed.check(ours) is ours
    refused = closed.check(theirs, "record 2")
    assert isinstance(refused, Rejected) and not isinstance(refused, LogEntry)
    assert refused.reason == "account 444455556666 is not registered for tenant acme (eventID " + theirs.event_id + ")"
    assert refused.locator == "record 2" and b"RunInstances" in refused.raw


def test_api_keys_have_a_fixed_shape() -> None:
    assert _KEY.match("dd0c_0123456789ab_" + "A" * 43)
    assert not _KEY.match("dd0c_0123456789ab_short")
    assert not _KEY.match("Bearer dd0c_0123456789ab_" + "A" * 43)
