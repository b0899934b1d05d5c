"""mlpipeline inference service: a strict, verifiable Flask + gunicorn model server."""
