"""Run folders: their layout (the one owner of every file name), states, the event stream, create/launch/cancel/resume."""
