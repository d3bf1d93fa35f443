"""Data stage: datasets from IDX, PNG archives and folders; train-only augmentation."""
