"""Training: the loop every method shares (`loop`), pretraining through it (`pretrain`), configs and
recipes (`config`), optimizers (Muon/NorMuon + Adam), schedules, checkpoints, DDP/FSDP2 (`dist`),
chunked loss, bits-per-byte evaluation, quantisation and the parameter-golf artifact."""
