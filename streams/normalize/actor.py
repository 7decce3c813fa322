"""Who made a call: one canonical, stable key per principal (case R04), its kind, and whether it is automation.

Reads `userIdentity` without ever indexing a key that may be absent and without raising on odd types (a
non-string where a string belongs is treated as absent). The canonical keys:

* IAMUser -> its ARN (`arn:aws:iam::A:user/alice`), else built from accountId + userName; kind user.
* AssumedRole -> the role ARN from `sessionContext.sessionIssuer.arn`; when the issuer is empty, derived from the
  assumed-role ARN (`arn:aws:sts::A:assumed-role/deploy-role/bob` -> `arn:aws:iam::A:role/deploy-role`); the
  session name (`bob`) goes to `detail`; kind role.
* AssumedRole of a service-linked role (`role/aws-service-role/<host>/...`, `AWSServiceRoleFor*`) ->
  `service:<host>` (host from the role path, a known role name, or `invokedBy`); kind service, automation.
* Root -> `arn:aws:iam::A:root`, kind root. Root with `invokedBy` an AWS service (legacy Auto Scaling / ELB
  acting with the account's authority) -> `service:<invokedBy>`, automation: the person is not root.
* IdentityCenterUser -> `idc:<identity store id>/<userId>`, kind idc.
* AWSService -> `service:<invokedBy>` (`service:unknown` without it), automation.
* FederatedUser -> its ARN (`arn:aws:sts::A:federated-user/bob`), else `federated:<principalId>`; kind federated.
* SAMLUser / WebIdentityUser -> `samluser:<userName or principalId>` / `webidentityuser:<...>`; kind federated.
* AWSAccount (another account acting) -> `account:<accountId>`, kind account.
* Unknown -> `unknown:<userName, principalId or accountId>`, kind unknown.
* type missing (AwsServiceEvent records) -> `service:<invokedBy>` when set (automation), else the ARN, else
  `unknown:<accountId>`; no userIdentity at all -> `unknown`.
* any other type T -> `T:<arn, principalId or userName>`, kind unknown.

A human acting through a console or a service on their behalf (`invokedBy` signin, CloudFormation, ...) stays
that human; `detail` then says `via <host>`. The ARN partition (aws, aws-us-gov, aws-cn) is kept.
A role with a path (`role/team/app`) keeps it when the issuer ARN is present; the derived form cannot know the
path (the STS ARN drops it), so such a role may appear under two keys if both shapes occur.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas.events import Actor

# Hosts that relay a person's own action with their credentials: the caller stays the actor.
_PERSON_RELAYS = frozenset({"signin.amazonaws.com", "console.amazonaws.com", "cloudformation.amazonaws.com"})

# Service-linked role name -> the service principal it belongs to (used when the role path is not in the record).
_SERVICE_LINKED = {
    "AWSServiceRoleForAutoScaling": "autoscaling.amazonaws.com",
    "AWSServiceRoleForAmazonEKS": "eks.amazonaws.com",
    "AWSServiceRoleForAmazonEKSNodegroup": "eks-nodegroup.amazonaws.com",
    "AWSServiceRoleForEC2Spot": "spot.amazonaws.com",
    "AWSServiceRoleForEC2SpotFleet": "spotfleet.amazonaws.com",
    "AWSServiceRoleForEC2Fleet": "ec2fleet.amazonaws.com",
    "AWSServiceRoleForECS": "ecs.amazonaws.com",
    "AWSServiceRoleForElasticLoadBalancing": "elasticloadbalancing.amazonaws.com",
    "AWSServiceRoleForRDS": "rds.amazonaws.com",
    "AWSServiceRoleForElastiCache": "elasticache.amazonaws.com",
    "AWSServiceRoleForRedshift": "redshift.amazonaws.com",
    "AWSServiceRoleForAmazonOpenSearchService": "opensearchservice.amazonaws.com",
    "AWSServiceRoleForAmazonSageMakerNotebooks": "sagemaker.amazonaws.com",
    "AWSServiceRoleForKafka": "kafka.amazonaws.com",
}


def actor_of(record: Mapping[str, Any]) -> Actor:
    """The canonical actor of a CloudTrail record. Never raises, whatever shape `userIdentity` has."""
    identity = record.get("userIdentity") if isinstance(record, Mapping) else None
    if not isinstance(identity, Mapping):
        return Actor("unknown", "unknown")
    kind = _s(identity, "type")
    invoked_by = _s(identity, "invokedBy")
    match kind:
        case "IAMUser":
            return _user(identity, invoked_by)
        case "AssumedRole":
            return _assumed_role(identity, invoked_by)
        case "Root":
            if _is_service_host(invoked_by):
                return Actor(f"service:{invoked_by}", "service", "acting as the account root", automation=True)
            return Actor(_root_arn(identity), "root", _via(invoked_by))
        case "IdentityCenterUser":
            return _identity_center(identity)
        case "AWSService":
            return Actor(f"service:{invoked_by or 'unknown'}", "service", automation=True)
        case "FederatedUser":
            return _federated(identity, invoked_by)
        case "SAMLUser" | "WebIdentityUser":
            who = _s(identity, "userName") or _s(identity, "principalId") or "unknown"
            return Actor(f"{kind.lower()}:{who}", "federated", _via(invoked_by))
        case "AWSAccount":
            account = _s(identity, "accountId") or "unknown"
            return Actor(f"account:{account}", "account", _s(identity, "principalId") or _via(invoked_by))
        case "Unknown":
            who = _s(identity, "userName") or _s(identity, "principalId") or _s(identity, "accountId") or "unknown"
            return Actor(f"unknown:{who}", "unknown")
        case None:
            if invoked_by:
                return Actor(f"service:{invoked_by}", "service", automation=True)
            arn = _s(identity, "arn")
            if arn:
                return Actor(arn, "unknown")
            return Actor(f"unknown:{_s(identity, 'accountId') or 'unknown'}", "unknown")
        case _:
            who = _s(identity, "arn") or _s(identity, "principalId") or _s(identity, "userName") or "unknown"
            return Actor(f"{kind}:{who}", "unknown", _via(invoked_by))


def _s(mapping: Mapping[str, Any], key: str) -> str | None:
    value = mapping.get(key)
    return value if isinstance(value, str) and value else None


def _via(invoked_by: str | None) -> str:
    return f"via {invoked_by}" if invoked_by else ""


def _is_service_host(host: str | None) -> bool:
    return bool(host) and host.endswith(".amazonaws.com") and host not in _PERSON_RELAYS  # type: ignore[union-attr]


def _arn_parts(arn: str | None) -> tuple[str, str, str] | None:
    """(partition, account, resource) of an ARN, or None when it is not one."""
    if not arn or not arn.startswith("arn:"):
        return None
    parts = arn.split(":", 5)
    if len(parts) < 6:
        return None
    return parts[1] or "aws", parts[4], parts[5]


def _partition(identity: Mapping[str, Any]) -> str:
    parts = _arn_parts(_s(identity, "arn"))
    return parts[0] if parts else "aws"


def _account(identity: Mapping[str, Any]) -> str:
    parts = _arn_parts(_s(identity, "arn"))
    return _s(identity, "accountId") or (parts[1] if parts and parts[1] else "unknown")


def _user(identity: Mapping[str, Any], invoked_by: str | None) -> Actor:
    arn = _s(identity, "arn")
    if arn:
        return Actor(arn, "user", _via(invoked_by))
    name = _s(identity, "userName")
    if name:
        return Actor(f"arn:{_partition(identity)}:iam::{_account(identity)}:user/{name}", "user", _via(invoked_by))
    return Actor(f"user:{_s(identity, 'principalId') or 'unknown'}", "user", _via(invoked_by))


def _root_arn(identity: Mapping[str, Any]) -> str:
    return f"arn:{_partition(identity)}:iam::{_account(identity)}:root"


def _assumed_role(identity: Mapping[str, Any], invoked_by: str | None) -> Actor:
    context = identity.get("sessionContext")
    issuer = context.get("sessionIssuer") if isinstance(context, Mapping) else None
    issuer = issuer if isinstance(issuer, Mapping) else {}
    issuer_arn = _s(issuer, "arn")
    arn = _s(identity, "arn")
    session = _session_name(arn, _s(identity, "principalId"))
    role_name = _s(issuer, "userName") or _role_name_from(issuer_arn) or _role_name_from(arn)
    service = _service_linked_host(issuer_arn, role_name, invoked_by)
    if service is not None:
        return Actor(f"service:{service}", "service", role_name or "", automation=True)
    if issuer_arn and ":role/" in issuer_arn:
        return Actor(issuer_arn, "role", session)
    if role_name:
        parts = _arn_parts(arn) or _arn_parts(issuer_arn)
        partition = parts[0] if parts else "aws"
        account = _s(issuer, "accountId") or (parts[1] if parts and parts[1] else None) or _account(identity)
        return Actor(f"arn:{partition}:iam::{account}:role/{role_name}", "role", session)
    return Actor(arn or f"role:{_s(identity, 'principalId') or 'unknown'}", "role", session)


def _role_name_from(arn: str | None) -> str | None:
    """Role name from `...:role/path/name` or `...:assumed-role/name/session`."""
    if not arn:
        return None
    if ":assumed-role/" in arn:
        rest = arn.split(":assumed-role/", 1)[1].split("/")
        return rest[0] or None
    if ":role/" in arn:
        return arn.rsplit("/", 1)[-1] or None
    return None


def _session_name(arn: str | None, principal_id: str | None) -> str:
    if arn and ":assumed-role/" in arn:
        rest = arn.split(":assumed-role/", 1)[1].split("/", 1)
        if len(rest) == 2 and rest[1]:
            return rest[1]
    if principal_id and ":" in principal_id:
        return principal_id.split(":", 1)[1]
    return ""


def _service_linked_host(issuer_arn: str | None, role_name: str | None, invoked_by: str | None) -> str | None:
    if issuer_arn and ":role/aws-service-role/" in issuer_arn:
        host = issuer_arn.split(":role/aws-service-role/", 1)[1].split("/", 1)[0]
        if host:
            return host
    if role_name and role_name.startswith("AWSServiceRoleFor"):
        base = role_name.split("_", 1)[0]  # custom-suffix service-linked roles: AWSServiceRoleForAutoScaling_app
        return _SERVICE_LINKED.get(base) or invoked_by or role_name
    return None


def _identity_center(identity: Mapping[str, Any]) -> Actor:
    behalf = identity.get("onBehalfOf")
    behalf = behalf if isinstance(behalf, Mapping) else {}
    store_arn = _s(behalf, "identityStoreArn")
    store = store_arn.rsplit("/", 1)[-1] if store_arn else "unknown"
    user = _s(behalf, "userId") or _s(identity, "userName") or _s(identity, "credentialId") or "unknown"
    return Actor(f"idc:{store}/{user}", "idc")


def _federated(identity: Mapping[str, Any], invoked_by: str | None) -> Actor:
    arn = _s(identity, "arn")
    name = arn.split(":federated-user/", 1)[1] if arn and ":federated-user/" in arn else ""
    if arn:
        return Actor(arn, "federated", name or _via(invoked_by))
    principal = _s(identity, "principalId") or "unknown"
    return Actor(f"federated:{principal}", "federated", _via(invoked_by))
