"""Training: mmengine's Runner on a prepared study, DDP launching, hooks, box-level and detector training."""
