"""Experiments: one folder per command (run module, ``settings.py`` with its
config section, ``report.py``), listed in ``registry``; ``common`` holds the
setup and stage training they share."""
