"""The classic engine: temporal denoise, deblocking, deinterlacing and edge-aware upscaling on
the CPU; needs no model download."""
