"""Notifications: Slack alerts and daily email digests, after commit, governed by Redis (panic, flags, breakers).

Flow order, one module each: `rules` (pure: which anomalies go to Slack now, which wait for the digest, which are
dropped, and why) -> `messages` / `digest` (pure: Block Kit and the digest's text and HTML) -> `governance` (Redis:
panic mode, per-tenant flags, circuit breakers) -> `channels` (HTTP and SMTP with bounded retries) -> `store`
(Postgres: channel config, cursors, delivery records, panic audit) -> `service` (the daemon loop that wires them).

The fold never imports any of this: the notifier is another process that reads committed anomalies.
"""
