"""models/vae package."""
