"""CloudTrail record shapes, as AWS writes them (see ops/corpus/cloudtrail/invictus-ir_aws_dataset and R25).

Builders return plain dicts in CloudTrail's own key order. Ids come from the caller's seeded RNG, so a history
is byte-for-byte reproducible. Dicts that never vary (identities, TLS details, constant request parameters)
are shared between records on purpose: a 1M-record history must not allocate them a million times.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ops.demo.accounts import Actor

EVENT_VERSION = "1.09"
_HEX = "0123456789abcdef"
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


class Ids:
    """Every identifier a history needs, drawn from one seeded RNG (order of calls = the history's order)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def uuid(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_HEX[8 + (int(h[16], 16) & 3)]}{h[17:20]}-{h[20:]}"

    def aws(self, prefix: str) -> str:
        """EC2-style id: i-, vol-, nat-, eipalloc-, r- ... followed by 17 hex digits."""
        return f"{prefix}-{self.rng.getrandbits(68):017x}"

    def token(self, n: int = 16) -> str:
        return "".join(self.rng.choices(_ALNUM, k=n))


_TLS: dict[str, dict[str, str]] = {}


def tls(host: str) -> dict[str, str]:
    found = _TLS.get(host)
    if found is None:
        found = _TLS[host] = {
            "tlsVersion": "TLSv1.3",
            "cipherSuite": "TLS_AES_128_GCM_SHA256",
            "clientProvidedHostHeader": host,
        }
    return found


def host_for(prefix: str, region: str) -> str:
    if prefix in ("iam", "signin"):
        return f"{prefix}.amazonaws.com"
    return f"{prefix}.{region}.amazonaws.com"


def record(
    ids: Ids,
    actor: Actor,
    event_time: str,
    prefix: str,
    name: str,
    region: str,
    account: str,
    request: Any,
    response: Any,
    read_only: bool,
    *,
    error: tuple[str, str] | None = None,
    event_type: str = "AwsApiCall",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One record in CloudTrail's key order. `prefix` is the endpoint prefix (ec2, rds, sts, ...)."""
    request_id = ids.uuid()
    rec: dict[str, Any] = {
        "eventVersion": EVENT_VERSION,
        "userIdentity": actor.identity,
        "eventTime": event_time,
        "eventSource": f"{prefix}.amazonaws.com",
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": actor.source_ip,
        "userAgent": actor.user_agent,
    }
    if error is not None:
        rec["errorCode"], rec["errorMessage"] = error
    rec["requestParameters"] = request
    rec["responseElements"] = response
    if extra:
        rec.update(extra)
    if event_type == "AwsApiCall":
        rec["requestID"] = request_id
    rec["eventID"] = ids.uuid()
    rec["readOnly"] = read_only
    rec["eventType"] = event_type
    rec["managementEvent"] = True
    rec["recipientAccountId"] = account
    rec["eventCategory"] = "Management"
    if "invokedBy" not in actor.identity:  # calls AWS services make on their own carry no TLS details
        rec["tlsDetails"] = tls(host_for(prefix, region))
    return rec


# --- resource-creating and -closing calls ---------------------------------------------------------------------


def run_instances(
    ids: Ids,
    instance_ids: list[str],
    instance_type: str,
    az: str,
    launch_ms: int,
    *,
    launch_template: bool,
    owner: str,
    name_tag: str,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(requestParameters, responseElements) of a successful RunInstances starting len(instance_ids) instances.

    With a launch template (Auto Scaling) the request does not name the instance type; only the response does.
    """
    count = len(instance_ids)
    request: dict[str, Any] = {
        "instancesSet": {"items": [{"imageId": "ami-0c7217cdde317cfec", "minCount": count, "maxCount": count}]},
        "blockDeviceMapping": {},
        "monitoring": {"enabled": False},
        "disableApiTermination": False,
        "disableApiStop": False,
        "clientToken": ids.uuid(),
        "tagSpecificationSet": {"items": [{"resourceType": "instance", "tags": [{"key": "Name", "value": name_tag}]}]},
    }
    if launch_template:
        request["launchTemplate"] = {"launchTemplateId": "lt-0a1b2c3d4e5f60718", "version": "7"}
    else:
        request["instanceType"] = instance_type
    subnet = "subnet-0" + az[-2:] + "1a2b3c4d5e6f70"
    items = []
    for i, iid in enumerate(instance_ids):
        ip = f"10.{(launch_ms // 1000) % 200}.{i % 250}.{(launch_ms // 7) % 250 + 1}"
        items.append(
            {
                "instanceId": iid,
                "imageId": "ami-0c7217cdde317cfec",
                "instanceState": {"code": 0, "name": "pending"},
                "privateDnsName": f"ip-{ip.replace('.', '-')}.ec2.internal",
                "amiLaunchIndex": i,
                "productCodes": {},
                "instanceType": instance_type,
                "launchTime": launch_ms,
                "placement": {"availabilityZone": az, "tenancy": "default"},
                "monitoring": {"state": "disabled"},
                "subnetId": subnet,
                "vpcId": "vpc-0f1e2d3c4b5a69788",
                "privateIpAddress": ip,
                "stateReason": {"code": "pending", "message": "pending"},
                "architecture": "x86_64",
                "rootDeviceType": "ebs",
                "rootDeviceName": "/dev/xvda",
                "blockDeviceMapping": {},
                "virtualizationType": "hvm",
                "hypervisor": "xen",
                "tagSet": {"items": [{"key": "Name", "value": name_tag}]},
                "groupSet": {"items": [{"groupId": "sg-0a9b8c7d6e5f40312", "groupName": "default"}]},
                "ebsOptimized": False,
                "enaSupport": True,
                "cpuOptions": {"coreCount": 1, "threadsPerCore": 2},
                "capacityReservationSpecification": {"capacityReservationPreference": "open"},
                "enclaveOptions": {"enabled": False},
                "metadataOptions": {"state": "pending", "httpTokens": "required", "httpPutResponseHopLimit": 2,
                                    "httpEndpoint": "enabled", "httpProtocolIpv4": "enabled"},
                "maintenanceOptions": {"autoRecovery": "default"},
            }
        )
    response = {
        "requestId": ids.uuid(),
        "reservationId": ids.aws("r"),
        "ownerId": owner,
        "groupSet": {},
        "instancesSet": {"items": items},
    }
    return request, response


def run_instances_failed(ids: Ids, instance_type: str, count: int) -> dict[str, Any]:
    """requestParameters of a RunInstances that AWS refused (the record has errorCode, responseElements null)."""
    return {
        "instancesSet": {"items": [{"imageId": "ami-0c7217cdde317cfec", "minCount": count, "maxCount": count}]},
        "instanceType": instance_type,
        "blockDeviceMapping": {},
        "monitoring": {"enabled": False},
        "disableApiTermination": False,
        "disableApiStop": False,
        "clientToken": ids.uuid(),
    }


def terminate_instances(ids: Ids, instance_ids: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    request = {"instancesSet": {"items": [{"instanceId": i} for i in instance_ids]}}
    response = {
        "requestId": ids.uuid(),
        "instancesSet": {
            "items": [
                {
                    "instanceId": i,
                    "currentState": {"code": 32, "name": "shutting-down"},
                    "previousState": {"code": 16, "name": "running"},
                }
                for i in instance_ids
            ]
        },
    }
    return request, response


def create_volume(
    ids: Ids, volume_id: str, size_gib: int, volume_type: str, az: str, create_ms: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    iops = 3000 if volume_type == "gp3" else max(100, 3 * size_gib)
    request = {"size": str(size_gib), "zone": az, "volumeType": volume_type, "encrypted": True,
               "clientToken": ids.uuid()}
    response = {
        "requestId": ids.uuid(),
        "volumeId": volume_id,
        "size": str(size_gib),
        "zone": az,
        "status": "creating",
        "createTime": create_ms,
        "volumeType": volume_type,
        "iops": iops,
        "encrypted": True,
        "kmsKeyId": "arn:aws:kms:" + az[:-1] + ":000000000000:key/mrk-demo",
        "multiAttachEnabled": False,
        **({"throughput": 125} if volume_type == "gp3" else {}),
    }
    return request, response


def delete_volume(ids: Ids, volume_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return {"volumeId": volume_id, "reportVolumeFailure": False}, {"requestId": ids.uuid(), "_return": True}


@dataclass(frozen=True)
class Database:
    identifier: str
    instance_class: str
    engine: str
    engine_version: str
    multi_az: bool
    storage_gib: int
    storage_type: str
    iops: int | None = None


def create_db_instance(
    ids: Ids, db: Database, region: str, account: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    request: dict[str, Any] = {
        "dBInstanceIdentifier": db.identifier,
        "allocatedStorage": db.storage_gib,
        "dBInstanceClass": db.instance_class,
        "engine": db.engine,
        "masterUsername": "app_admin",
        "masterUserPassword": "HIDDEN_DUE_TO_SECURITY_REASONS",
        "dBSubnetGroupName": "private-db",
        "multiAZ": db.multi_az,
        "engineVersion": db.engine_version,
        "publiclyAccessible": False,
        "storageType": db.storage_type,
        "storageEncrypted": True,
        "deletionProtection": False,
    }
    if db.iops:
        request["iops"] = db.iops
    response: dict[str, Any] = {
        "dBInstanceIdentifier": db.identifier,
        "dBInstanceClass": db.instance_class,
        "engine": db.engine,
        "dBInstanceStatus": "creating",
        "masterUsername": "app_admin",
        "allocatedStorage": db.storage_gib,
        "preferredBackupWindow": "04:41-05:11",
        "backupRetentionPeriod": 7,
        "dBSecurityGroups": [],
        "vpcSecurityGroups": [{"vpcSecurityGroupId": "sg-0d1c2b3a4f5e60718", "status": "active"}],
        "dBParameterGroups": [{"dBParameterGroupName": f"default.{db.engine}{db.engine_version.split('.')[0]}",
                               "parameterApplyStatus": "in-sync"}],
        "preferredMaintenanceWindow": "tue:03:39-tue:04:09",
        "pendingModifiedValues": {"masterUserPassword": "HIDDEN_DUE_TO_SECURITY_REASONS"},
        "multiAZ": db.multi_az,
        "engineVersion": db.engine_version,
        "autoMinorVersionUpgrade": True,
        "readReplicaDBInstanceIdentifiers": [],
        "licenseModel": "postgresql-license" if db.engine == "postgres" else "general-public-license",
        "optionGroupMemberships": [{"optionGroupName": f"default:{db.engine}", "status": "in-sync"}],
        "publiclyAccessible": False,
        "storageType": db.storage_type,
        "dbInstancePort": 0,
        "storageEncrypted": True,
        "dbiResourceId": "db-" + ids.token(26).upper(),
        "cACertificateIdentifier": "rds-ca-rsa2048-g1",
        "copyTagsToSnapshot": False,
        "dBInstanceArn": f"arn:aws:rds:{region}:{account}:db:{db.identifier}",
        "deletionProtection": False,
        "networkType": "IPV4",
        "storageThroughput": 0,
    }
    if db.iops:
        response["iops"] = db.iops
    return request, response


def delete_db_instance(identifier: str) -> dict[str, Any]:
    return {"dBInstanceIdentifier": identifier, "skipFinalSnapshot": True, "deleteAutomatedBackups": True}


def allocate_address(ids: Ids, allocation_id: str, region: str, public_ip: str) -> tuple[dict, dict]:
    return {"domain": "vpc"}, {
        "requestId": ids.uuid(),
        "publicIp": public_ip,
        "domain": "vpc",
        "allocationId": allocation_id,
        "publicIpv4Pool": "amazon",
        "networkBorderGroup": region,
    }


def create_nat_gateway(ids: Ids, nat_id: str, allocation_id: str, created_iso: str) -> tuple[dict, dict]:
    """The EC2 XML-style wrapper (CreateNatGatewayRequest / CreateNatGatewayResponse) real records carry."""
    token = ids.uuid().upper()
    request = {
        "CreateNatGatewayRequest": {
            "ConnectivityType": "public",
            "AllocationId": allocation_id,
            "SubnetId": "subnet-0e5d4c3b2a1f09876",
            "ClientToken": token,
        }
    }
    response = {
        "CreateNatGatewayResponse": {
            "xmlns": "http://ec2.amazonaws.com/doc/2016-11-15/",
            "natGateway": {
                "connectivityType": "public",
                "subnetId": "subnet-0e5d4c3b2a1f09876",
                "natGatewayAddressSet": {"item": {"isPrimary": True, "allocationId": allocation_id,
                                                  "status": "associating"}},
                "createTime": created_iso,
                "vpcId": "vpc-0f1e2d3c4b5a69788",
                "natGatewayId": nat_id,
                "state": "pending",
            },
            "requestId": ids.uuid(),
            "clientToken": token,
        }
    }
    return request, response


# --- everyday traffic: read-only calls and writes that create nothing billable ----------------------------------

Maker = Callable[[Ids, str, str], tuple[Any, Any]]  # (ids, region, account) -> (requestParameters, responseElements)


def _const(request: Any, response: Any = None) -> Maker:
    return lambda ids, region, account: (request, response)


@dataclass(frozen=True)
class Template:
    weight: float
    prefix: str  # endpoint prefix; eventSource is <prefix>.amazonaws.com
    name: str
    actor: str  # users | deploy | monitor | autoscaling | service
    make: Maker
    global_only: bool = False  # IAM / sign-in events are recorded in us-east-1 only
    event_type: str = "AwsApiCall"
    extra: dict[str, Any] | None = None  # e.g. additionalEventData


def _assume_role(ids: Ids, region: str, account: str) -> tuple[Any, Any]:
    session = "i-" + f"{ids.rng.getrandbits(68):017x}"
    key = "ASIA" + ids.token(16).upper()
    role = "app-instance-role"
    return (
        {"roleArn": f"arn:aws:iam::{account}:role/{role}", "roleSessionName": session, "durationSeconds": 3600},
        {
            "credentials": {"accessKeyId": key, "sessionToken": "<sensitiveDataRemoved>",
                            "expiration": "Jan 1, 2030, 12:00:00 AM"},
            "assumedRoleUser": {"assumedRoleId": f"AROADEMOAPPROLE00001:{session}",
                                "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}"},
        },
    )


def _get_parameter(ids: Ids, region: str, account: str) -> tuple[Any, Any]:
    return {"name": f"/app/{ids.rng.choice(('db/host', 'db/port', 'feature/flags', 'queue/url'))}",
            "withDecryption": True}, None


def _decrypt(ids: Ids, region: str, account: str) -> tuple[Any, Any]:
    return {"encryptionAlgorithm": "SYMMETRIC_DEFAULT"}, None


def _describe_instances(ids: Ids, region: str, account: str) -> tuple[Any, Any]:
    return {"instancesSet": {}, "filterSet": {"items": [{"name": "tag:Name", "valueSet": {"items": [
        {"value": ids.rng.choice(("web", "worker", "ci-runner", "batch"))}]}}]}}, None


READ_ONLY: tuple[Template, ...] = (
    Template(14, "ec2", "DescribeInstances", "monitor", _describe_instances),
    Template(6, "ec2", "DescribeInstanceStatus", "autoscaling", _const({"includeAllInstances": False})),
    Template(5, "ec2", "DescribeVolumes", "monitor", _const({"volumeSet": {}, "filterSet": {}})),
    Template(4, "ec2", "DescribeSecurityGroups", "deploy", _const({"securityGroupSet": {}, "filterSet": {}})),
    Template(3, "ec2", "DescribeSubnets", "deploy", _const({"subnetSet": {}, "filterSet": {}})),
    Template(2, "ec2", "DescribeVpcs", "deploy", _const({"vpcSet": {}, "filterSet": {}})),
    Template(2, "ec2", "DescribeNatGateways", "monitor", _const({"DescribeNatGatewaysRequest": {}})),
    Template(6, "autoscaling", "DescribeAutoScalingGroups", "monitor", _const(None)),
    Template(9, "sts", "AssumeRole", "service", _assume_role),
    Template(5, "sts", "GetCallerIdentity", "users", _const(None)),
    Template(10, "kms", "Decrypt", "service", _decrypt),
    Template(4, "kms", "GenerateDataKey", "service", _const({"keyId": "alias/app", "keySpec": "AES_256"})),
    Template(8, "ssm", "GetParameter", "service", _get_parameter),
    Template(3, "rds", "DescribeDBInstances", "monitor", _const(None)),
    Template(3, "s3", "ListBuckets", "users", _const({"Host": "s3.amazonaws.com"})),
    Template(3, "s3", "GetBucketAcl", "monitor", _const({"bucketName": "app-artifacts", "acl": "",
                                                          "Host": "app-artifacts.s3.amazonaws.com"})),
    Template(5, "monitoring", "GetMetricData", "monitor",
             _const({"scanBy": "TimestampDescending", "maxDatapoints": 1440})),
    Template(3, "monitoring", "DescribeAlarms", "monitor", _const({"maxRecords": 100})),
    Template(3, "logs", "DescribeLogGroups", "users", _const({"limit": 50})),
    Template(2, "elasticloadbalancing", "DescribeTargetHealth", "autoscaling",
             _const({"targetGroupArn": "arn:aws:elasticloadbalancing:::targetgroup/web/6d0ecf831eec9f09"})),
    Template(2, "lambda", "ListFunctions20150331", "deploy", _const(None)),
    Template(3, "iam", "GetRole", "deploy", _const({"roleName": "app-instance-role"}), global_only=True),
    Template(2, "iam", "ListAttachedRolePolicies", "monitor", _const({"roleName": "gha-deploy"}), global_only=True),
)


def _create_tags(ids: Ids, region: str, account: str) -> tuple[Any, Any]:
    return (
        {"resourcesSet": {"items": [{"resourceId": ids.aws("sg")}]},
         "tagSet": {"items": [{"key": "owner", "value": ids.rng.choice(("platform", "data", "web"))}]}},
        {"requestId": ids.uuid(), "_return": True},
    )


def _put_parameter(ids: Ids, region: str, account: str) -> tuple[Any, Any]:
    return ({"name": "/app/release/current", "type": "String", "overwrite": True},
            {"version": ids.rng.randrange(2, 900), "tier": "Standard"})


def _create_log_stream(ids: Ids, region: str, account: str) -> tuple[Any, Any]:
    return {"logGroupName": "/aws/lambda/ingest", "logStreamName": f"2024/05/01/[$LATEST]{ids.token(32)}"}, None


def _authorize_ingress(ids: Ids, region: str, account: str) -> tuple[Any, Any]:
    return (
        {"groupId": "sg-0a9b8c7d6e5f40312", "ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": 443,
         "toPort": 443, "groups": {}, "ipRanges": {"items": [{"cidrIp": "10.0.0.0/16"}]}}]}},
        {"requestId": ids.uuid(), "_return": True},
    )


def _update_function(ids: Ids, region: str, account: str) -> tuple[Any, Any]:
    return {"functionName": "ingest", "memorySize": 512, "timeout": 30}, {
        "functionName": "ingest", "functionArn": f"arn:aws:lambda:{region}:{account}:function:ingest",
        "runtime": "python3.12", "memorySize": 512, "timeout": 30, "state": "Active",
        "lastUpdateStatus": "InProgress"}


def _console_login(ids: Ids, region: str, account: str) -> tuple[Any, Any]:
    return None, {"ConsoleLogin": "Success"}


# Writes that create nothing billable by the hour: they make the 10 % of non-read-only traffic realistic.
WRITES: tuple[Template, ...] = (
    Template(5, "ec2", "CreateTags", "deploy", _create_tags),
    Template(4, "ssm", "PutParameter", "deploy", _put_parameter),
    Template(6, "logs", "CreateLogStream", "service", _create_log_stream),
    Template(1, "ec2", "AuthorizeSecurityGroupIngress", "deploy", _authorize_ingress),
    Template(2, "lambda", "UpdateFunctionConfiguration20150331v2", "deploy", _update_function),
    Template(1, "signin", "ConsoleLogin", "users", _console_login, global_only=True, event_type="AwsConsoleSignIn",
             extra={"additionalEventData": {"LoginTo": "https://console.aws.amazon.com/console/home",
                                            "MobileVersion": "No", "MFAUsed": "Yes"}}),
)
