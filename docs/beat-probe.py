"""Does a demo model play beats? One caption for each of the 6 drum combinations, sampling seeds 0-3.

The five trained drum combinations (low/mid slow and fast, high fast) and the held-out one (high
slow) get a training-style caption each (`make_caption`, a new draw per seed); a training run's
model folder is generated with the shipped settings (as `docs/pattern-probe.py`), then the
overrides given; the judge is `magnetkit_synth.analysis`. Printed: per combination, how many of
the 4 clips were judged a beat and how many had all four attributes right.

Run: python docs/beat-probe.py [MODEL [KEY=VALUE ...]]   ("default" = the embedded model; about a
CPU-minute at one thread)
"""

import sys

import numpy as np
import torch

from magnetkit import load
from magnetkit_synth.analysis import analyse
from magnetkit_synth.dataset import HELDOUT, Attributes, make_caption

SHIPPED = ["sampler.stage_temperatures=[1.0,0.05,0.05,0.05]", "generation.cfg_max=3",
           "generation.decoding_steps=[40,10,10,10]"]
COMBINATIONS = [Attributes("drums", register, tempo, "beat") for register, tempo in
                (("low", "slow"), ("low", "fast"), ("mid", "slow"), ("mid", "fast"), ("high", "fast"), ("high", "slow"))]
SEEDS = range(4)

if __name__ == "__main__":
    torch.set_num_threads(1)
    model, overrides = (sys.argv[1] if len(sys.argv) > 1 else "default"), sys.argv[2:]
    pipeline = load(None, overrides) if model == "default" else load(model, [*SHIPPED, *overrides])
    beats = {c: 0 for c in COMBINATIONS}
    right = {c: 0 for c in COMBINATIONS}
    for seed in SEEDS:
        texts = [make_caption(c, np.random.default_rng([seed, i])) for i, c in enumerate(COMBINATIONS)]
        result = pipeline.generate(texts, seed=seed, progress=False)
        for combination, clip in zip(COMBINATIONS, result.audio):
            judged = analyse(clip.numpy(), result.sample_rate).attributes
            beats[combination] += judged.pattern == "beat"
            right[combination] += judged == combination
    for c in COMBINATIONS:
        where = "held out" if c in HELDOUT else "trained"
        print(f"{c.tempo} {c.register} drums beat ({where}): beat {beats[c]}/{len(SEEDS)}, all four {right[c]}/{len(SEEDS)}")
    trained = [c for c in COMBINATIONS if c not in HELDOUT]
    print(f"trained combinations: beat {sum(beats[c] for c in trained)}/{len(trained) * len(SEEDS)}, "
          f"all four {sum(right[c] for c in trained)}/{len(trained) * len(SEEDS)}")
