"""Replay (rebuild projections from the log into shadow tables, then swap them in) and backtest (what would a
policy have flagged, folded in memory). See streams/replay/replay.py for the protocol."""

# NOTIFY channel fired in the swap transaction (payload: the replayed tenant, or "*" for all). The API's live feed
# listens to it and moves its clients past the rebuilt history instead of sending it as new.
REPLACED_CHANNEL = "dd0c_feed_replaced"
