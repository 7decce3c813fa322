"""Price snapshot tooling: build the shipped snapshot from raw sources; refresh from the AWS Price List API."""
