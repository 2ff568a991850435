"""The stages as library functions, each taking one typed run config.

`train_supernet(SupernetRun)`, `train_model(ModelRun)`, ... are what the `nasrec` commands
and the pipeline both call: the commands derive their flags and help from the run configs
(`nasrec_torchrec.settings`), the pipeline builds the configs from an experiment file.
"""
