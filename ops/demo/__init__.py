"""`dd0c-cost demo`: a realistic CloudTrail history (generate), and the first-run orchestration (orchestrate)."""
