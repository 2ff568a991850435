"""nasrec_torchrec: weight-sharing NAS for CTR models on TorchRec."""
