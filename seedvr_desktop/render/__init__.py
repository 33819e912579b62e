"""Rendering a project: its clips become restore jobs with captions burned in or muxed.

Application work above both `engine` and `project`, which stay unaware of each other."""
