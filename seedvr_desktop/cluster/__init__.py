"""Rendering on every GPU of a box or on a Ray cluster, with the output of a local run.

The driver (`run.py`) plans the job exactly as a local run does (scene cuts, chunks, segment
boundaries), hands each journaled segment to a worker actor (`worker.py`) as a work unit
(`units.py`), and commits the encoded segments to the journal in order, so `--resume`, muxing
and the atomic final rename are the local code paths. A segment that finishes ahead of an
earlier one is journaled at once as such (`Journal.record_ahead`), so a killed driver loses
only the segments in flight. `connect.py` joins or starts Ray, `scheduler.py` keeps the
workers busy and retries the unit of a worker that died, `progress.py` tells what each worker
is doing (on the job's progress events).

Ray is optional (the `[cluster]` extra): nothing here imports it at module level.
"""
