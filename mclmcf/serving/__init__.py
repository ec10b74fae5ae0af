"""Serving: clip + transcript -> score and maps (pipeline), weights resolution, live sessions, batch scoring, attribution."""
