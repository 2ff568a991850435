"""Names offered on the command line, importable without pyarrow: formats, bad-row policies."""

FORMATS = ("criteo", "avazu", "kdd", "csv", "parquet")
ON_BAD_ROW = ("error", "skip")
