"""models/dit package."""
