"""Tests of `nasrec_torchrec.search` (a package, so they import `search_helpers` relatively)."""
