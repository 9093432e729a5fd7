"""Widgets the screens share: text charts, monitor panels, the chart painter, preference-pair previews."""
