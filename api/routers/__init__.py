"""One router per read model (plus auth, health and the live feed)."""
