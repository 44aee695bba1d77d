"""The classifier room: one path from scores to labels, for every face and every candidate.

    sources (each model's own probabilities: the fine-tuned LLM's label scoring, the classic model)
      → rule (correction to the natural class mix, temperature, a two-class threshold, the blend's weight)
      → decision (a class index per text)
      → rows (label, code, confidence, one probability per class, a note)

``scoring`` and ``classic`` give the sources; ``rules`` the rules (the adapter card's calibration is one of them);
``choice`` fits them on held-out rows and chooses the candidate in use; ``rows`` turns decisions into output rows;
``engine`` is a run's (or a bundle's, ``bundle``) classifier in use, which evaluation, predict, serve, the bundle,
the Playground and the exports' checks all go through. ``candidates`` holds the names they share.
"""
