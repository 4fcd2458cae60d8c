"""Do arpeggio prompts of training combinations give arpeggios under other guidance or stage-0 temperature? Run: python docs/arpeggio-sweep.py (about 1.5 CPU-minutes)."""
import sys, time, torch
torch.set_num_threads(1)
from magnetkit import load
from magnetkit_synth.analysis import analyse
texts = ["a fast high square-wave arpeggio", "a slow mid-range sawtooth arpeggio", "a fast low sine wave arpeggio", "a slow high sine wave arpeggio"]
want_tempo = ["fast", "slow", "fast", "slow"]
settings = {"shipped (cfg 3->1)": [], "cfg 6->1": ["generation.cfg_max=6"], "cfg 10->3": ["generation.cfg_max=10", "generation.cfg_min=3"],
            "stage-0 temperature 2": ["sampler.stage_temperatures=[2.0,0.05,0.05,0.05]"]}
for name, ov in settings.items():
    p = load(None, ov); t = time.process_time()
    r = p.generate(texts * 2, seed=0, progress=False)
    res = [analyse(c.numpy(), r.sample_rate) for c in r.audio]
    arp = sum(x.attributes.pattern == "arpeggio" for x in res)
    tempo = sum(x.attributes.pattern == "arpeggio" and x.attributes.tempo == w for x, w in zip(res, want_tempo * 2))
    print(f"{name}: arpeggio {arp}/8, arpeggio at the right tempo {tempo}/8, patterns {[x.attributes.pattern for x in res]}, notes {[len(x.notes) for x in res]}, cpu {time.process_time()-t:.0f} s", flush=True)
