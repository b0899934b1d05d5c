"""The training workflow: data -> schema -> fitted pipeline -> metrics -> published, tracked run."""
