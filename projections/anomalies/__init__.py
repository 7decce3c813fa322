"""Read model: explained anomalies, written once per id; `feed_id` orders the live feed."""
