"""Tests of `nasrec_torchrec.pipeline` (a package, so they import `pipeline_helpers`
relatively)."""
