"""Does a demo model continue a real arpeggio? The first second of 8 real clips, the next 2 s generated.

The continuation (judged on its last 2 s alone) is decoded with the model's own settings, with
the positions of the first codebook committed by confidence (MAGNeT's order, the default) or
left to right (``--order left-to-right``: each step keeps the earliest masked spans, so the first
codebook is sampled almost token by token from its left context). The first codebook's token
runs ([token, frames]) of two continuations are printed: the prompt's notes, then what follows.

Run: python docs/continuation-probe.py [MODEL [KEY=VALUE ...]] [--order left-to-right]   ("default" =
the embedded model; KEY=VALUE: recipe overrides, e.g. the shipped settings for a training run's
model folder; about 20 CPU-seconds at one thread)
"""

import argparse
import importlib.util
from pathlib import Path

import torch

from magnetkit import load
from magnetkit_synth.analysis import analyse

_spec = importlib.util.spec_from_file_location("note_change_probe", Path(__file__).with_name("note-change-probe.py"))
_probe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_probe)
SAMPLE_RATE = 16_000


class LeftToRight:
    """A sampler wrapper whose confidences fall with the frame index at the first stage: earliest spans kept first."""

    def __init__(self, inner):
        self.inner = inner
        self.positionwise = False  # the engine passes whole rows [B, T], so the frame index is the last axis

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __call__(self, logits, step, num_steps, generator=None, stage=None):
        tokens, probs = self.inner(logits, step, num_steps, generator=generator, stage=stage)
        if stage == 0:
            frames = probs.shape[-1]
            order = 1 - torch.arange(frames, dtype=probs.dtype, device=probs.device) / frames
            probs = order.expand_as(probs).contiguous()
        return tokens, probs


def runs(codes: list[int]) -> list[list[int]]:
    """[token, run length] of consecutive equal tokens."""
    out: list[list[int]] = []
    for token in codes:
        if out and out[-1][0] == token:
            out[-1][1] += 1
        else:
            out.append([token, 1])
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default="default")
    parser.add_argument("overrides", nargs="*", help="recipe overrides, e.g. generation.cfg_max=3")
    parser.add_argument("--order", choices=["confidence", "left-to-right"], default="confidence")
    args = parser.parse_args()
    torch.set_num_threads(1)
    clips = _probe.arpeggio_clips(8)
    pipeline = load(None if args.model == "default" else args.model, ["decode.masked_only=false", *args.overrides])
    if args.order == "left-to-right":
        pipeline.sampler = LeftToRight(pipeline.sampler)
    audio = torch.stack([torch.from_numpy(clip.audio[:SAMPLE_RATE]) for clip in clips])[:, None]
    result = pipeline.continue_audio(audio, SAMPLE_RATE, [clip.caption for clip in clips], duration=3.0,
                                     seed=0, progress=False)
    right = 0
    for clip, out in zip(clips, result.audio):
        judged = analyse(out[0, SAMPLE_RATE:].numpy(), SAMPLE_RATE).attributes
        right += judged.pattern == "arpeggio" and judged.tempo == clip.attributes.tempo
        print(f"{clip.attributes.tempo} {clip.attributes.waveform} arpeggio -> continued as {judged.pattern}"
              f"{' ' + judged.tempo if judged.tempo else ''}")
    print(f"{args.model}, {args.order}: {right} of {len(clips)} continued as an arpeggio at the right tempo")
    for row in range(2):
        print(runs(result.codes[row, 0].tolist()))
