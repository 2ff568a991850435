"""TorchX components for every stage of nasrec_torchrec (see `launchers/components.py`).

Run one with the torchx CLI from the repository root, e.g.
`torchx run -s local_cwd launchers/components.py:train_supernet --data DIR --output DIR`;
`torchx run launchers/components.py:<component> --help` lists its options.
"""
