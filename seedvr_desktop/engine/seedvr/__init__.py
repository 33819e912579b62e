"""The SeedVR / SeedVR2 engines: model folders and downloads, memory planning, and the chunk
path (encode -> DiT -> decode) that runs the models of `seedvr_desktop.models`."""
