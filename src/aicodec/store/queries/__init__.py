"""Reading results: the one home for what the store knows, so every caller means the same.

- ``points``: a candidate's points (``StoredPoint``, the one typed record of a stored RD
  point), its BD-rates against the ladder, the clips it was scored on, its fitness, the best
  codec;
- ``runs``: the store's evolve runs, a run's iterations (its history), plans, adoptions and
  tags, its planners' predictions, and the clips it stored;
- ``candidates``: a candidate's record and source, lineage, the iterations that made it, the
  attempts to generate candidates, and the runs and generations that failed;
- ``clips``: the stored clips (``StoredClip``);
- ``calls``: the model calls' tokens and cost, per batch and per purpose.

The loop, the prompts, the report and the CLI ask these modules; none writes.

"The best codec" means one of three things, each with its own rule:

- ``points.current_best``: the last adopted codec (adoption decided it; nothing here
  judges it again).
- ``points.best_candidate``: the store's best by the figures, used while nothing is
  adopted (the parent of ``generate`` and of a new evolve run) and named in the generation
  prompt. Of every candidate with a score at the given qualities (on every given clip), the
  one with the lowest mean BD-rate vs x264 from its latest scores; PSNR-YUV plays no part.
- ``runs.may_be_best``: whether an evolve iteration's codec may be its run's best (the
  summary's and the report's): scored, and no worse than its parent on PSNR-YUV (BD-rate
  vs the parent <= 0), so a luma gain paid for with chroma does not count. The run's best
  is its start or the eligible iteration with the lowest BD-rate vs x264.

``best_candidate`` does not apply the PSNR-YUV rule, for two reasons. A score holds
BD-rates against the ladder only; the BD-rate vs a parent on PSNR-YUV exists only on an
evolve iteration's row, so a seed or a codec scored by hand has nothing to be judged by.
And where an iteration does hold it, the rule changes results on a fresh store: after two
offline evolve runs (7 iterations) the adopted candidate, +0.01 % on PSNR-YUV against its
parent, has the lowest mean BD-rate vs x264, and the rule would move the prompts' "best
codec" from it to the runner-up. Making the two agree is a change of behaviour, to be
decided on its own.
"""
