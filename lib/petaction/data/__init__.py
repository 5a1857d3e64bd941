"""Data: reading the AI-Hub format, the synthetic set, preparing clips (crops, frames), splits, video."""
