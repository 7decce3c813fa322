"""Resource ids shared by the catalog (which opens resources) and the ledger (which closes them).

EC2 ids are unique on their own (`i-...`, `vol-...`, `snap-...`, `eipalloc-...`, `nat-...`, `vpce-...`). Named
resources (an RDS instance, a Redshift cluster, an EKS cluster, a table) are only unique per service and region,
and several services share names ("prod" can be an EKS and a Redshift cluster), so their id is the ARN built from
region, account and name — the same string whether the create or the delete call is being read. Names that AWS
stores lowercased (RDS, ElastiCache, Redshift, SageMaker) are lowercased here too, so `CreateDBInstance
StackStateDB` and `DeleteDBInstance stackstatedb` meet.
"""

from __future__ import annotations


def partition(region: str) -> str:
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    if region.startswith("cn-"):
        return "aws-cn"
    return "aws"


def arn(service: str, region: str, account: str, resource: str) -> str:
    return f"arn:{partition(region)}:{service}:{region}:{account}:{resource}"


def rds_instance(region: str, account: str, name: str) -> str:
    return arn("rds", region, account, f"db:{name.lower()}")


def rds_cluster(region: str, account: str, name: str) -> str:
    return arn("rds", region, account, f"cluster:{name.lower()}")


def cache_cluster(region: str, account: str, name: str) -> str:
    return arn("elasticache", region, account, f"cluster:{name.lower()}")


def replication_group(region: str, account: str, name: str) -> str:
    return arn("elasticache", region, account, f"replicationgroup:{name.lower()}")


def redshift_cluster(region: str, account: str, name: str) -> str:
    return arn("redshift", region, account, f"cluster:{name.lower()}")


def opensearch_domain(region: str, account: str, name: str) -> str:
    return arn("es", region, account, f"domain/{name}")


def eks_cluster(region: str, account: str, name: str) -> str:
    return arn("eks", region, account, f"cluster/{name}")


def sagemaker(region: str, account: str, kind: str, name: str) -> str:
    """kind: endpoint | endpoint-config | notebook-instance."""
    return arn("sagemaker", region, account, f"{kind}/{name.lower()}")


def dynamodb_table(region: str, account: str, name: str) -> str:
    return arn("dynamodb", region, account, f"table/{name}")


def classic_load_balancer(region: str, account: str, name: str) -> str:
    return arn("elasticloadbalancing", region, account, f"loadbalancer/{name}")
