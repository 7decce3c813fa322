"""The IAM permissions dd0c/cost needs, as data: the documents in ops/docs/ and the probes of `accounts check`
are built from these lists (tests/integration/accounts/test_check.py checks they agree).

Everything is read-only. The poller reads the trail's bucket (and, when object notifications are used, the SQS
queue it drains); the zombie hunter calls only Describe* and GetMetricData (streams/zombies/scan.py).
"""

from __future__ import annotations

import json
from typing import Any

POLLER_S3 = ("s3:ListBucket", "s3:GetObject")
POLLER_SQS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
ZOMBIE_ACTIONS = (
    "ec2:DescribeRegions",
    "ec2:DescribeVolumes",
    "ec2:DescribeSnapshots",
    "ec2:DescribeImages",
    "ec2:DescribeLaunchTemplates",
    "ec2:DescribeLaunchTemplateVersions",
    "ec2:DescribeAddresses",
    "ec2:DescribeNatGateways",
    "elasticloadbalancing:DescribeLoadBalancers",
    "cloudwatch:GetMetricData",
)
ROLE_NAME = "dd0c-cost-reader"


def reader_policy(bucket: str = "<trail-bucket>", prefix: str = "", queue_arn: str | None = None) -> dict[str, Any]:
    """The policy to attach to the role (or user) dd0c/cost acts as in the customer's account."""
    root = f"{prefix.strip('/')}/AWSLogs/" if prefix.strip("/") else "AWSLogs/"
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ListTrailBucket",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": f"arn:aws:s3:::{bucket}",
            "Condition": {"StringLike": {"s3:prefix": [f"{root}*"]}},
        },
        {
            "Sid": "ReadTrailObjects",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{bucket}/{root}*",
        },
        {
            # Only needed when the bucket's object notifications go to a queue for dd0c/cost; DeleteMessage removes
            # a notification once its object is read - the one write, and only on dd0c/cost's own queue.
            "Sid": "TrailNotifications",
            "Effect": "Allow",
            "Action": list(POLLER_SQS),
            "Resource": queue_arn or "arn:aws:sqs:<region>:<account-id>:<queue-name>",
        },
        {
            "Sid": "ZombieHunterReadOnly",
            "Effect": "Allow",
            "Action": list(ZOMBIE_ACTIONS),
            "Resource": "*",
        },
    ]
    return {"Version": "2012-10-17", "Statement": statements}


def trust_policy(dd0c_principal: str = "arn:aws:iam::<dd0c-host-account-id>:role/<dd0c-host-role>",
                 external_id: str = "<external-id>") -> dict[str, Any]:
    """The role's trust policy: only dd0c/cost's own identity may assume it, and only with the external id."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": dd0c_principal},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": external_id}},
            }
        ],
    }


def host_policy(role_name: str = ROLE_NAME) -> dict[str, Any]:
    """For the identity dd0c/cost itself runs as (instance role / user): allowed to assume the reader roles."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": f"arn:aws:iam::*:role/{role_name}"}
        ],
    }


def as_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2)
