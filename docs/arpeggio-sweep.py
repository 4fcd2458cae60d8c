"""Do arpeggio prompts of training combinations give arpeggios under other guidance or stage-0 temperature?

Run: python docs/arpeggio-sweep.py   (the embedded default model; about 1 CPU-minute at one thread)
"""

import time

import torch

from magnetkit import load
from magnetkit_synth.analysis import analyse

TEXTS = ["a fast high square-wave arpeggio", "a slow mid-range sawtooth arpeggio", "a fast low sine wave arpeggio",
         "a slow high sine wave arpeggio"]
TEMPOS = ["fast", "slow", "fast", "slow"]
SETTINGS = {"shipped (cfg 3->1)": [], "cfg 6->1": ["generation.cfg_max=6"],
            "cfg 10->3": ["generation.cfg_max=10", "generation.cfg_min=3"],
            "stage-0 temperature 2": ["sampler.stage_temperatures=[2.0,0.05,0.05,0.05]"]}

if __name__ == "__main__":
    torch.set_num_threads(1)
    for name, overrides in SETTINGS.items():
        pipeline = load(None, overrides)
        started = time.process_time()
        result = pipeline.generate(TEXTS * 2, seed=0, progress=False)
        judged = [analyse(clip.numpy(), result.sample_rate) for clip in result.audio]
        arpeggios = sum(j.attributes.pattern == "arpeggio" for j in judged)
        right = sum(j.attributes.pattern == "arpeggio" and j.attributes.tempo == t for j, t in zip(judged, TEMPOS * 2))
        print(f"{name}: arpeggio {arpeggios}/8, at the asked tempo {right}/8, "
              f"patterns {[j.attributes.pattern for j in judged]}, cpu {time.process_time() - started:.0f} s")
