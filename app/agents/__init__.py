"""Agents: named, configurable units of automation, triggered by schedules, buttons and events."""
