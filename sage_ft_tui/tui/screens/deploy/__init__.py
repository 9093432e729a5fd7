"""The after-training screens: merge, serve, chat."""
