"""Does a demo model play arpeggios and beats? 6 arpeggio and 2 beat prompts of training combinations, seeds 0 and 1.

A training run's model folder is generated with the shipped settings (`assets/default-model.yaml`:
first-stage temperature 1, the others 0.05, CFG 3 -> 1, steps 40/10/10/10), then the overrides
given; the judge is `magnetkit_synth.analysis`.

Run: python docs/pattern-probe.py [MODEL [KEY=VALUE ...]]   ("default" = the embedded model; about
40 CPU-seconds at one thread)
"""

import sys

import torch

from magnetkit import load
from magnetkit_synth.analysis import analyse

TEXTS = ["a fast high square-wave arpeggio", "a slow mid-range sawtooth arpeggio", "a fast low sine wave arpeggio",
         "a slow high sine wave arpeggio", "a slow low plucked string arpeggio", "a fast mid-range sine wave arpeggio",
         "a fast drums beat", "a slow drums beat"]
TEMPOS = ["fast", "slow", "fast", "slow", "slow", "fast", "fast", "slow"]
PATTERNS = ["arpeggio"] * 6 + ["beat"] * 2
SHIPPED = ["sampler.stage_temperatures=[1.0,0.05,0.05,0.05]", "generation.cfg_max=3",
           "generation.decoding_steps=[40,10,10,10]"]

if __name__ == "__main__":
    torch.set_num_threads(1)
    model, overrides = (sys.argv[1] if len(sys.argv) > 1 else "default"), sys.argv[2:]
    pipeline = load(None, overrides) if model == "default" else load(model, [*SHIPPED, *overrides])
    pattern = tempo = 0
    for seed in (0, 1):
        result = pipeline.generate(TEXTS, seed=seed, progress=False)
        for clip, asked, asked_tempo, text in zip(result.audio, PATTERNS, TEMPOS, TEXTS):
            judged = analyse(clip.numpy(), result.sample_rate).attributes
            pattern += judged.pattern == asked
            tempo += judged.pattern == asked and judged.tempo == asked_tempo
            print(f"seed {seed}, {text!r}: {judged.pattern}{' ' + judged.tempo if judged.tempo else ''}")
    print(f"{model} {' '.join(overrides)}: the asked pattern {pattern}/16, at the asked tempo {tempo}/16")
