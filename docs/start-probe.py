"""Can a demo model start an arpeggio, or only continue one? One forward of the first codebook.

A real grid-timed arpeggio (`magnetkit_synth.dataset`, timing "grid": a note every 20 frames) is
encoded; its first N frames of the first codebook stay visible, the rest and the other codebooks
are masked, and the model predicts every frame in one forward, with guidance 1, 3 and 10. Printed:
the probability that the last visible token is held 5 frames later, and the argmax token runs
([token]x[frames]) after the visible frames. N = 0 is the first decoding step of generation; for
it the spread of the logits over frames is printed too (0 means every frame predicts the same).

Run: python docs/start-probe.py [MODEL ...] [--caption TEXT] [--arpeggio fixed]   ("default" = the
embedded model; a few CPU-seconds each; --arpeggio: the pitches of the clip, as `demo-train --arpeggio`)
"""

import argparse
from itertools import groupby

import torch

from magnetkit import load
from magnetkit_synth.dataset import ARPEGGIOS, Attributes, make_clip

VISIBLE, SCALES, FRAMES = (0, 20, 25, 45), (1, 3, 10), 150


def runs(codes: list[int]) -> str:
    """``token x frames`` for each run of equal tokens."""
    return " ".join(f"{token}x{len(list(run))}" for token, run in groupby(codes))


def probe(source: str | None, caption: str | None = None, arpeggio: str = "varied") -> None:
    pipeline = load(source)
    model = pipeline.model
    clip = make_clip(0, "train", 3, Attributes("sine", "high", "slow", "arpeggio"), timing="grid", arpeggio=arpeggio)
    codes = pipeline.codec.encode(torch.from_numpy(clip.audio)[None, None])[..., :FRAMES]
    caption = caption or clip.caption
    condition = pipeline.conditioner([caption, None]).embeddings  # the caption, then the null condition
    print(f"{source or 'default'}: {caption!r}, the truth: {runs(codes[0, 0].tolist())}")
    for visible in VISIBLE:
        inputs = codes.clone()
        inputs[:, 0, visible:] = model.mask_id
        inputs[:, 1:] = model.mask_id
        with torch.no_grad():
            conditional, unconditional = model(inputs.expand(2, -1, -1), condition, 0, stage_only=True)[:, 0]
        for scale in SCALES:
            logits = unconditional + scale * (conditional - unconditional)
            if visible == 0:
                spread = float((logits - logits.mean(0, keepdim=True)).abs().max())
                held = f"logit spread over frames {spread:.2g}"
            else:
                last = int(codes[0, 0, visible - 1])
                held = f"P(token {last} held at frame {visible + 5}) {float(logits[visible + 5].softmax(-1)[last]):.2f}"
            print(f"  {visible:2d} frames visible, cfg {scale:2d}: {held}; "
                  f"predicted after them: {runs(logits[visible:].argmax(-1).tolist())[:110]}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=["default"])
    parser.add_argument("--caption", help="prompt with this text instead of the clip's own caption (e.g. one "
                                          "that asks for a sustained note: does the pattern word change anything?)")
    parser.add_argument("--arpeggio", choices=ARPEGGIOS, default="varied",
                        help="the real clip's arpeggio pitches (default varied)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name in args.models:
        probe(None if name == "default" else name, args.caption, args.arpeggio)
