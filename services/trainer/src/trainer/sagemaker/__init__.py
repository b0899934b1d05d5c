"""SageMaker: the training-container entrypoint (container.py) and job submission (submit.py)."""
