"""Pretraining: optimizers (Muon/NorMuon + Adam), schedules, the loop, checkpoints, chunked loss,
bits-per-byte evaluation, quantisation and the parameter-golf artifact."""
