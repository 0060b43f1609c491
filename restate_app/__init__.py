"""restate_app."""
