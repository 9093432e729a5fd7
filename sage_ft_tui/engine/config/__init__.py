"""The run configuration: the schema of config.yaml (every key documented once) and the presets that fill it."""
