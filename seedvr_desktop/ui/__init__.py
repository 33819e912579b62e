"""The desktop GUI (the only package that imports PySide6).

Layout:
  app.py            QApplication set-up (dark Fusion, HiDPI) and `run_app`
  main_window.py    wiring only: docks, controllers, menus
  session.py        open/save/recent/autosave + recovery, over project.commands
  undo.py           QUndoStack bridged to the project command system
  edits.py          panel gestures -> undoable project commands
  playback.py       playhead, transport keys, what the viewer shows
  preview.py        the Preview action and its cache (preview_cache.py, preview_render.py)
  exports.py        export dialog -> render items -> worker jobs -> queue rows
  worker.py         the restore worker on its QThread (engine kept between jobs)
  frame_decoder.py  decoder thread for scrubbing/thumbnails (no Qt); frame_source.py wraps it
  frame_cache.py    full-resolution LRU and JPEG proxy stores
  mailbox.py        how background threads reach the GUI thread without calling Qt
  compat.py         work-around for a PySide6 reference-count defect on CPython < 3.12
  widgets/          media bin, viewer (+ panel), timeline (+ caption track), inspector,
                    queue panel, export and settings dialogs
"""
