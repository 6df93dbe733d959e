"""Reading results: the one home for what the store knows, so every caller means the same.

- ``points``: a candidate's points (``StoredPoint``, the one typed record of a stored RD
  point), its BD-rates against the ladder, the clips it was scored on, its fitness, the best
  codec;
- ``runs``: the store's evolve runs, a run's iterations (its history), plans, adoptions and
  tags, its planners' predictions, and the clips it stored;
- ``candidates``: a candidate's record and source, lineage, the iterations that made it, the
  attempts to generate candidates, and the runs and generations that failed;
- ``clips``: the stored clips (``StoredClip``);
- ``calls``: the model calls' tokens and cost, per batch and per purpose;
- ``costs``: what an evolve run spent per iteration (sandbox stages' seconds, the tokens and
  dollars of the calls logged under it), for its cost per gain.

The loop, the prompts, the report and the CLI ask these modules; none writes.

"The best codec" means one of two things, and both meet one rule (``points.keeps_chroma``):
a codec an evolve iteration found worse than its parent on PSNR-YUV (BD-rate vs the parent
above 0, or undefined) is never a best, so a luma gain paid for with chroma does not count.

- ``points.current_best``: the last adopted codec (the adoption policy decided it, with its
  own PSNR-YUV check against the codec it replaced).
- ``points.best_candidate``: the store's best by the figures, used while nothing is
  adopted (the parent of ``generate`` and of a new evolve run) and named in the generation
  prompt: of the candidates with a score at the given qualities (on every given clip) that
  meet the rule, the one with the lowest mean BD-rate vs x264 from its latest scores. A
  seed or a codec scored by hand has no parent to be judged against and always competes.
- ``runs.may_be_best``: the same rule for an evolve run's own best (the summary's and the
  report's): its start, or the scored iteration that meets the rule with the lowest BD-rate
  vs x264; ``evolution.context.RunContext.scored`` applies it to a run's parents.
"""
