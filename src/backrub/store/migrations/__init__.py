"""Alembic's environment and the schema's revisions (run by `backrub.store.migration`)."""
