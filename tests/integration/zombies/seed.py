"""One of each zombie and a healthy twin of each, created in moto, with the CloudWatch data the test puts.

Everything is created now (wall clock); the hunt runs with its clock `AHEAD` later, so every resource is 40 days
old, the stopped instance stopped 40 days ago, and the metric window (14 days ending at the hunt's last whole
day) lies in moto's future - moto stores and returns datapoints whatever their time.

Prices (shipped snapshot 2026-07-20, us-east-1, 730 h/month), the figures the tests assert:
  unattached 100 GiB gp3 volume       100 x $0.08            = $8.00
  root volume of the stopped instance   8 GiB gp2 x $0.10    = $0.80   (moto's root volume: 8 GiB gp2)
  orphaned snapshot of a 20 GiB volume 20 x $0.05 (standard) = $1.00
  unassociated Elastic IP            $0.005/h x 730          = $3.65
  idle NAT gateway                   $0.045/h x 730          = $32.85
  idle ALB                           $0.0225/h x 730         = $16.425
  idle t3.micro                      $0.0104/h x 730         = $7.592
  idle db.t3.micro postgres, 20 GiB gp2: $0.018 x 730 + 20 x $0.115 = 13.14 + 2.30 = $15.44
  stopped t3.micro, no Elastic IP: compute not billed         = $0.00
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from streams.zombies.pure import metric_window
from tests.integration.zombies.conftest import Aws

AHEAD = timedelta(days=40)
DAY = timedelta(days=1)
EXPECTED_WASTE = {
    "unattached_ebs_volume": 8.00,
    "stopped_instance_volume": 0.80,
    "orphaned_ebs_snapshot": 1.00,
    "unassociated_eip": 3.65,
    "idle_nat_gateway": 32.85,
    "idle_load_balancer": 16.425,
    "idle_ec2_instance": 7.592,
    "idle_rds_instance": 15.44,
    "stopped_instance": 0.00,
}
TOTAL_WASTE = 85.757  # the sum of the above


@dataclass(frozen=True)
class Seeded:
    """The ids of what was created: `zombies` (check -> resource id) and the healthy twins."""

    region: str
    zombies: dict[str, str]
    twins: dict[str, str]
    hunt_now: datetime


def _put_daily(cw: Any, namespace: str, metric: str, dims: dict[str, str], value: float, now: datetime) -> None:
    window = metric_window(now, 14, 86400)
    data = [
        {"MetricName": metric, "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
         "Timestamp": window.start + i * DAY + timedelta(hours=12), "Value": value}
        for i in range(14)
    ]
    cw.put_metric_data(Namespace=namespace, MetricData=data)


def seed(aws: Aws, region: str = "us-east-1") -> Seeded:
    ec2 = aws.client("ec2", region)
    elbv2 = aws.client("elbv2", region)
    rds = aws.client("rds", region)
    cw = aws.client("cloudwatch", region)
    now = datetime.now(UTC) + AHEAD
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]][:2]
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]

    def run(itype: str = "t3.micro") -> str:
        return str(ec2.run_instances(ImageId="ami-0dd0c0000000000aa", MinCount=1, MaxCount=1,
                                     InstanceType=itype)["Instances"][0]["InstanceId"])

    busy, idle, stopped = run(), run(), run()
    ec2.stop_instances(InstanceIds=[stopped])
    stopped_root = ec2.describe_volumes(
        Filters=[{"Name": "attachment.instance-id", "Values": [stopped]}])["Volumes"][0]["VolumeId"]
    for iid, cpu, net in ((busy, 60.0, 1e9), (idle, 1.0, 1e3)):
        _put_daily(cw, "AWS/EC2", "CPUUtilization", {"InstanceId": iid}, cpu, now)
        _put_daily(cw, "AWS/EC2", "NetworkIn", {"InstanceId": iid}, net, now)
        _put_daily(cw, "AWS/EC2", "NetworkOut", {"InstanceId": iid}, net, now)

    az = ec2.describe_instances(InstanceIds=[busy])["Reservations"][0]["Instances"][0]["Placement"]["AvailabilityZone"]
    loose = ec2.create_volume(Size=100, VolumeType="gp3", AvailabilityZone=az)["VolumeId"]
    attached = ec2.create_volume(Size=50, VolumeType="gp3", AvailabilityZone=az)["VolumeId"]
    ec2.attach_volume(VolumeId=attached, InstanceId=busy, Device="/dev/sdf")

    gone = ec2.create_volume(Size=20, VolumeType="gp2", AvailabilityZone=az)["VolumeId"]
    orphan = ec2.create_snapshot(VolumeId=gone)["SnapshotId"]
    ec2.delete_volume(VolumeId=gone)
    backup = ec2.create_snapshot(VolumeId=attached)["SnapshotId"]  # its volume lives: a backup, not a leftover
    # A self-owned AMI: its snapshot's volume is gone too, but the AMI uses it (R11's rule).
    ami = ec2.register_image(Name="golden", RootDeviceName="/dev/sda1",
                             BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 8}}])["ImageId"]

    free_ip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    used_ip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    ec2.associate_address(AllocationId=used_ip, InstanceId=busy)

    nats = []
    for _ in range(2):
        alloc = ec2.allocate_address(Domain="vpc")["AllocationId"]  # held by the NAT: in use
        nats.append(ec2.create_nat_gateway(SubnetId=subnets[0], AllocationId=alloc)["NatGateway"]["NatGatewayId"])
    nat_idle, nat_busy = nats
    _put_daily(cw, "AWS/NATGateway", "BytesOutToDestination", {"NatGatewayId": nat_busy}, 5e8, now)

    lbs = {}
    for name in ("old-admin", "web"):
        lbs[name] = elbv2.create_load_balancer(Name=name, Subnets=subnets)["LoadBalancers"][0]["LoadBalancerArn"]
    tg = elbv2.create_target_group(Name="web", Protocol="HTTP", Port=80, VpcId=vpc,
                                   TargetType="instance")["TargetGroups"][0]["TargetGroupArn"]
    elbv2.create_listener(LoadBalancerArn=lbs["web"], Protocol="HTTP", Port=80,
                          DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
    elbv2.register_targets(TargetGroupArn=tg, Targets=[{"Id": busy}])
    web_dim = lbs["web"].split(":loadbalancer/", 1)[1]
    _put_daily(cw, "AWS/ApplicationELB", "RequestCount", {"LoadBalancer": web_dim}, 1000.0, now)

    for name, connections in (("reports-old", 0.0), ("orders", 5.0)):
        rds.create_db_instance(DBInstanceIdentifier=name, DBInstanceClass="db.t3.micro", Engine="postgres",
                               AllocatedStorage=20, StorageType="gp2", MasterUsername="dd0c",
                               MasterUserPassword="not-a-real-password-0")
        _put_daily(cw, "AWS/RDS", "DatabaseConnections", {"DBInstanceIdentifier": name}, connections, now)
    db_arn = rds.describe_db_instances(DBInstanceIdentifier="reports-old")["DBInstances"][0]["DBInstanceArn"]

    return Seeded(
        region=region,
        zombies={
            "unattached_ebs_volume": loose,
            "stopped_instance_volume": stopped_root,
            "orphaned_ebs_snapshot": orphan,
            "unassociated_eip": free_ip,
            "idle_nat_gateway": nat_idle,
            "idle_load_balancer": lbs["old-admin"],
            "idle_ec2_instance": idle,
            "idle_rds_instance": db_arn,
            "stopped_instance": stopped,
        },
        twins={
            "attached_volume": attached, "backup_snapshot": backup, "ami": ami, "associated_eip": used_ip,
            "busy_nat": nat_busy, "busy_lb": lbs["web"], "busy_instance": busy, "busy_db": "orders",
        },
        hunt_now=now,
    )
