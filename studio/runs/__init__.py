"""The run floor: a run's folder and everything in it (``folder``), the one training job of this process
(``jobs``), the live metrics stream (``stream``), the record a training run writes phase by phase (``recorder``),
and the cache of the untrained model's scores (``score_cache``). Everything above reads and writes runs through here.
"""
