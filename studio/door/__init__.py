"""The door: one function per thing a user does, the same for every face (the CLI, the web app, the REST server).

- ``data``: check a data file (columns, classes, split, codes, warnings, how hard it is); keep an upload.
- ``plan``: the recipe the run will use and "Will it fit?"; presets, the fitting plan, the advice.
- ``training``: start, resume and stop training; the status of the run that trains.
- ``evaluation``: evaluate a run (or another labelled file), save its threshold, sanity-check the untrained model.
- ``predict``: classify a file, or one text (the Playground).
- ``export``: export a run in a format, checked by reloading it.
- ``labels``: find likely wrong labels in a whole file (classic model, optional LLM folds) and review them.
- ``runs``: list, compare, show and delete runs.

Each verb returns a result object that renders its own lines (``lines()`` for a terminal, ``markdown()`` for a
page) and, where it has one, its JSON (``to_dict()``); the faces only present them. Modules that load torch are
imported inside the verbs that need them, so the page and ``--help`` start without it.
"""
