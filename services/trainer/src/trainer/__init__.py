"""mlpipeline trainer: reproducible training into versioned artifacts, tracked in MLflow."""
