"""Neural modules: weight-sliced operators, the supernet, NASRecNet and the TorchRec model."""
