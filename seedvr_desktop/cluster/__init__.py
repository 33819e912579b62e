"""Rendering on every GPU of a box or on a Ray cluster, with the output of a local run.

The driver (`run.py`) plans the job exactly as a local run does (scene cuts, chunks, segment
boundaries), hands each journaled segment to a worker actor (`worker.py`) as a work unit
(`units.py`), and commits the encoded segments to the journal in order, so `--resume`, muxing
and the atomic final rename are the local code paths. `connect.py` joins or starts Ray,
`scheduler.py` keeps the workers busy and retries the unit of a worker that died.

Ray is optional (the `[cluster]` extra): nothing here imports it at module level.
"""
