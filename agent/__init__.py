"""dd0c-cost-agent: the forwarder that runs next to the customer's AWS account (see agent/main.py, README)."""
