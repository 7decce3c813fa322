"""Read model: what is normal per (tenant, account, resource_type) - exact Welford state plus readable columns."""
