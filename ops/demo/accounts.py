"""The invented organisation the demo history belongs to: accounts, their regions, and who acts in them.

Account ids, names and addresses are made up (documentation ranges for IPs). The first four profiles are the
ones the demo and the docs talk about; more accounts are derived from the seed when asked for.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from typing import Any

# Every account works in these; a launch anywhere else is the "never-used region" incident.
HOME_REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
REGION_WEIGHTS = {"us-east-1": 0.6, "us-west-2": 0.25, "eu-west-1": 0.15}
UNUSED_REGION = "ap-southeast-2"

_ALNUM_UPPER = string.ascii_uppercase + string.digits


@dataclass(frozen=True)
class Profile:
    account_id: str
    name: str
    users: tuple[str, ...]
    asg_size: int  # instances the web Auto Scaling group adds every morning (and removes every evening)
    asg_type: str
    traffic: float  # share of the organisation's API calls
    databases: bool  # runs a short-lived staging database every few days


PROFILES: tuple[Profile, ...] = (
    Profile("318274650192", "prod", ("alice", "bob", "ines"), 4, "m5.large", 0.4, True),
    Profile("527381946027", "staging", ("dmitri", "erin", "farah"), 2, "m5.large", 0.2, True),
    Profile("640192837465", "data", ("carol", "gwen", "hiro"), 2, "m5.xlarge", 0.25, False),
    Profile("759302184756", "dev", ("frank", "jonas", "kemi"), 1, "t3.large", 0.15, False),
)

_EXTRA_USERS = ("lena", "mario", "nadia", "oscar", "priya", "quinn", "ravi", "sofia", "tariq", "uma")


def profiles(count: int, seed: int) -> tuple[Profile, ...]:
    """The first `count` account profiles; beyond the four named ones, derived deterministically from seed."""
    if count < 1:
        raise ValueError("at least one account")
    out = list(PROFILES[:count])
    rng = random.Random(f"accounts-{seed}")
    for i in range(len(out), count):
        users = tuple(rng.sample(_EXTRA_USERS, 3))
        out.append(Profile(str(rng.randrange(10**11, 10**12)), f"team{i}", users, 1, "m5.large", 0.1, False))
    return tuple(out)


def _key_id(rng: random.Random, prefix: str) -> str:
    return prefix + "".join(rng.choice(_ALNUM_UPPER) for _ in range(16))


@dataclass(frozen=True)
class Actor:
    """One identity as CloudTrail writes it. `identity` is shared by every record of this actor (never mutated)."""

    name: str
    identity: dict[str, Any]
    source_ip: str
    user_agent: str


_CLI_AGENTS = (
    "aws-cli/2.15.30 Python/3.11.8 Linux/6.1.0 exe/x86_64.ubuntu.22 prompt/off command/ec2.run-instances",
    "aws-cli/2.17.2 Python/3.11.9 Darwin/23.5.0 exe/x86_64 prompt/off",
    "Boto3/1.34.120 md/Botocore#1.34.120 ua/2.0 os/linux#6.5.0 md/arch#x86_64 lang/python#3.11.9 cfg/retry-mode#legacy",
)
_TERRAFORM_AGENT = (
    "APN/1.0 HashiCorp/1.0 Terraform/1.8.3 terraform-provider-aws/5.52.0 aws-sdk-go-v2/1.27.0 os/linux "
    "lang/go#1.22.3"
)


@dataclass(frozen=True)
class Actors:
    """Who calls the APIs of one account."""

    users: tuple[Actor, ...]
    deploy: Actor  # CI role (GitHub Actions through OIDC), runs Terraform
    monitor: Actor  # a read-only observability role polling Describe*/Get*/List*
    autoscaling: Actor  # the Auto Scaling service-linked role
    service: Actor  # AWS services assuming roles (EC2 instance profiles, Lambda)
    root: Actor  # only the incidents use it


def actors_for(profile: Profile, seed: int, session_start: str) -> Actors:
    """`session_start` (ISO-8601) is the creationDate of the role sessions (the start of the history)."""
    rng = random.Random(f"actors-{seed}-{profile.account_id}")
    acc = profile.account_id
    users = []
    for i, name in enumerate(profile.users):
        identity = {
            "type": "IAMUser",
            "principalId": _key_id(rng, "AIDA"),
            "arn": f"arn:aws:iam::{acc}:user/{name}",
            "accountId": acc,
            "accessKeyId": _key_id(rng, "AKIA"),
            "userName": name,
        }
        users.append(Actor(name, identity, f"198.51.100.{10 + i + 3 * (int(acc) % 50)}", _CLI_AGENTS[i % 3]))
    return Actors(
        users=tuple(users),
        deploy=_assumed_role(rng, acc, "gha-deploy", "GitHubActions", "203.0.113.40", _TERRAFORM_AGENT, session_start),
        monitor=_assumed_role(
            rng, acc, "observability-readonly", "metrics-poller", "192.0.2.77",
            "Boto3/1.34.84 md/Botocore#1.34.84 ua/2.0 os/linux#5.10.0 md/arch#x86_64 lang/python#3.12.3",
            session_start,
        ),
        autoscaling=Actor(
            "autoscaling",
            {
                "type": "AssumedRole",
                "principalId": f"{_key_id(rng, 'AROA')}:AutoScaling",
                "arn": f"arn:aws:sts::{acc}:assumed-role/AWSServiceRoleForAutoScaling/AutoScaling",
                "accountId": acc,
                "sessionContext": {
                    "sessionIssuer": {
                        "type": "Role",
                        "principalId": _key_id(rng, "AROA"),
                        "arn": f"arn:aws:iam::{acc}:role/aws-service-role/autoscaling.amazonaws.com/"
                        "AWSServiceRoleForAutoScaling",
                        "accountId": acc,
                        "userName": "AWSServiceRoleForAutoScaling",
                    },
                    "webIdFederationData": {},
                    "attributes": {"creationDate": session_start, "mfaAuthenticated": "false"},
                },
                "invokedBy": "autoscaling.amazonaws.com",
            },
            "autoscaling.amazonaws.com",
            "autoscaling.amazonaws.com",
        ),
        service=Actor("ec2-service", {"type": "AWSService", "invokedBy": "ec2.amazonaws.com"},
                      "ec2.amazonaws.com", "ec2.amazonaws.com"),
        root=Actor(
            "root",
            {
                "type": "Root",
                "principalId": acc,
                "arn": f"arn:aws:iam::{acc}:root",
                "accountId": acc,
                "accessKeyId": _key_id(rng, "ASIA"),
                "sessionContext": {"attributes": {"creationDate": session_start, "mfaAuthenticated": "false"}},
            },
            "203.0.113.250",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0",
        ),
    )


def _assumed_role(
    rng: random.Random, acc: str, role: str, session: str, ip: str, agent: str, session_start: str
) -> Actor:
    role_id = _key_id(rng, "AROA")
    return Actor(
        role,
        {
            "type": "AssumedRole",
            "principalId": f"{role_id}:{session}",
            "arn": f"arn:aws:sts::{acc}:assumed-role/{role}/{session}",
            "accountId": acc,
            "accessKeyId": _key_id(rng, "ASIA"),
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": role_id,
                    "arn": f"arn:aws:iam::{acc}:role/{role}",
                    "accountId": acc,
                    "userName": role,
                },
                "webIdFederationData": {},
                "attributes": {"creationDate": session_start, "mfaAuthenticated": "false"},
            },
        },
        ip,
        agent,
    )
