"""Data: schema, raw-format readers, prepare (split + encode to Parquet), loader, synthetic data."""
