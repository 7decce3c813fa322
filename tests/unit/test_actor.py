"""actor_of: one canonical key per principal, whatever shape userIdentity takes (case R04)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.events import Actor
from streams.normalize.actor import actor_of
from tests.unit.test_normalize_support import CORPUS, by_event_id, case, read_records

R04_KEYS = {
    "00000000-0000-4000-8000-000000000401": Actor(
        "arn:aws:iam::111122223333:user/alice", "user", "via signin.amazonaws.com"
    ),
    "00000000-0000-4000-8000-000000000402": Actor(
        "service:autoscaling.amazonaws.com", "service", "AWSServiceRoleForAutoScaling", automation=True
    ),
    "00000000-0000-4000-8000-000000000403": Actor("arn:aws:iam::111122223333:root", "root"),
    "00000000-0000-4000-8000-000000000404": Actor("arn:aws:iam::111122223333:role/deploy-role", "role", "bob"),
    "00000000-0000-4000-8000-000000000405": Actor("idc:d-0000000000/a1b2c3d4-0000-4000-8000-00000000a11c", "idc"),
    "00000000-0000-4000-8000-000000000406": Actor("service:lambda.amazonaws.com", "service", automation=True),
}


def test_R04_six_identity_shapes_give_the_canonical_keys() -> None:
    records = case("R04")
    assert len(records) == 6
    for event_id, expected in R04_KEYS.items():
        assert actor_of(by_event_id(records, event_id)) == expected


def _role(arn: str, issuer: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    identity = {"type": "AssumedRole", "arn": arn, "accountId": "111122223333"}
    identity["sessionContext"] = {"sessionIssuer": issuer or {}}
    identity.update(extra)
    return {"userIdentity": identity}


def test_assumed_role_uses_the_issuer_arn_and_keeps_the_session() -> None:
    record = _role(
        "arn:aws:sts::111122223333:assumed-role/ci-role/pipeline",
        {"type": "Role", "arn": "arn:aws:iam::111122223333:role/ci-role", "userName": "ci-role"},
    )
    assert actor_of(record) == Actor("arn:aws:iam::111122223333:role/ci-role", "role", "pipeline")


def test_role_with_a_path_keeps_it_when_the_issuer_says_so() -> None:
    record = _role(
        "arn:aws:sts::123456789012:assumed-role/oblcc-admin/elvin",
        {"type": "Role", "arn": "arn:aws:iam::123456789012:role/oblcc/oblcc-admin", "userName": "oblcc-admin"},
        invokedBy="cloudformation.amazonaws.com",
    )
    # CloudFormation acts with the caller's credentials: the role stays the actor
    assert actor_of(record) == Actor("arn:aws:iam::123456789012:role/oblcc/oblcc-admin", "role", "elvin")


def test_service_linked_role_without_issuer_or_invoked_by() -> None:
    record = _role("arn:aws:sts::111122223333:assumed-role/AWSServiceRoleForAutoScaling/AutoScaling")
    assert actor_of(record) == Actor(
        "service:autoscaling.amazonaws.com", "service", "AWSServiceRoleForAutoScaling", automation=True
    )


def test_service_linked_role_host_comes_from_its_path() -> None:
    record = _role(
        "arn:aws:sts::111122223333:assumed-role/AWSServiceRoleForAmazonEKSNodegroup/EKS",
        {"arn": "arn:aws:iam::111122223333:role/aws-service-role/eks-nodegroup.amazonaws.com/AWSServiceRoleForX"},
    )
    assert actor_of(record).key == "service:eks-nodegroup.amazonaws.com"


def test_govcloud_partition_is_kept() -> None:
    record = _role("arn:aws-us-gov:sts::111122223333:assumed-role/deploy/bob")
    assert actor_of(record).key == "arn:aws-us-gov:iam::111122223333:role/deploy"


def test_root_acting_through_auto_scaling_is_automation_not_root() -> None:
    """coreos/grafiti and cloud-custodian records: Root + invokedBy autoscaling (legacy Auto Scaling)."""
    record = {
        "userIdentity": {
            "type": "Root",
            "arn": "arn:aws:iam::619193117841:root",
            "accountId": "619193117841",
            "invokedBy": "autoscaling.amazonaws.com",
        }
    }
    assert actor_of(record) == Actor(
        "service:autoscaling.amazonaws.com", "service", "acting as the account root", automation=True
    )
    record["userIdentity"]["invokedBy"] = "signin.amazonaws.com"
    assert actor_of(record) == Actor("arn:aws:iam::619193117841:root", "root", "via signin.amazonaws.com")


def test_root_without_arn_builds_it_from_the_account() -> None:
    assert actor_of({"userIdentity": {"type": "Root", "accountId": "111122223333"}}).key == (
        "arn:aws:iam::111122223333:root"
    )


def test_other_types_are_stable_and_documented() -> None:
    cases = {
        "FederatedUser": (
            {"type": "FederatedUser", "arn": "arn:aws:sts::111122223333:federated-user/bob", "principalId": "1:bob"},
            Actor("arn:aws:sts::111122223333:federated-user/bob", "federated", "bob"),
        ),
        "FederatedUser without arn": (
            {"type": "FederatedUser", "principalId": "111122223333:bob"},
            Actor("federated:111122223333:bob", "federated"),
        ),
        "AWSAccount": (
            {"type": "AWSAccount", "accountId": "444455556666", "principalId": "AROAX:session"},
            Actor("account:444455556666", "account", "AROAX:session"),
        ),
        "Unknown": ({"type": "Unknown", "userName": "alice"}, Actor("unknown:alice", "unknown")),
        "missing type, invokedBy": (
            {"accountId": "111122223333", "invokedBy": "secretsmanager.amazonaws.com"},
            Actor("service:secretsmanager.amazonaws.com", "service", automation=True),
        ),
        "missing type, nothing": ({"accountId": "111122223333"}, Actor("unknown:111122223333", "unknown")),
        "SAMLUser": (
            {"type": "SAMLUser", "userName": "alice@example.com"},
            Actor("samluser:alice@example.com", "federated"),
        ),
        "AWSService without invokedBy": ({"type": "AWSService"}, Actor("service:unknown", "service", automation=True)),
        "IAMUser without arn": (
            {"type": "IAMUser", "accountId": "111122223333", "userName": "bob"},
            Actor("arn:aws:iam::111122223333:user/bob", "user"),
        ),
    }
    for label, (identity, expected) in cases.items():
        assert actor_of({"userIdentity": identity}) == expected, label


def test_absent_or_broken_user_identity_never_raises() -> None:
    assert actor_of({}) == Actor("unknown", "unknown")
    assert actor_of({"userIdentity": None}) == Actor("unknown", "unknown")
    assert actor_of({"userIdentity": "root"}) == Actor("unknown", "unknown")
    weird = {"type": "AssumedRole", "arn": 42, "sessionContext": {"sessionIssuer": "x"}, "principalId": ["a"]}
    assert actor_of({"userIdentity": weird}) == Actor("role:unknown", "role")


def test_every_corpus_record_has_an_actor() -> None:
    count = 0
    for path in sorted(CORPUS.rglob("*.json")):
        try:
            records = read_records(path)
        except ValueError:
            continue  # deliberately broken files belong to the reader's tests
        for record in records:
            actor = actor_of(record)
            assert actor.key and actor.kind in {
                "user",
                "role",
                "root",
                "service",
                "federated",
                "idc",
                "account",
                "unknown",
            }
            count += 1
    assert count > 2900


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
_identity_keys = st.sampled_from(
    ["type", "arn", "accountId", "userName", "principalId", "invokedBy", "sessionContext", "onBehalfOf"]
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_identity_keys, _json | st.sampled_from(["Root", "AssumedRole", "IAMUser", "AWSService"])))
def test_actor_of_never_raises_on_any_identity(identity: dict[str, Any]) -> None:
    actor = actor_of({"userIdentity": identity})
    assert isinstance(actor.key, str) and actor.key
