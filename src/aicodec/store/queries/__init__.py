"""Reading results: the one home for what the store knows, so every caller means the same.

- ``points``: a candidate's points, its BD-rates against the ladder, its fitness, the best
  codec (one rule);
- ``runs``: an evolve run's iterations (its history) and the clips it stored.

The loop, the prompts, the report and the CLI ask these modules; none writes.
"""
