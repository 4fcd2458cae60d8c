"""Does a demo model know when an arpeggio's notes change? First-codebook accuracy with the real clip as context.

Real arpeggio clips (validation split: training combinations) are encoded; spans of the first
codebook are masked at a rate (the other codebooks fully masked, as in training) and the model
predicts them in one forward. Each masked frame is counted by what the truth is there: the same
token as the nearest visible frame to its left (the note goes on) or another one (a note change,
or the attack/release tokens around it).

Run: python docs/note-change-probe.py [--timing grid] [MODEL ...]   ("default" = the embedded
model; --timing grid: the same clips on `GRID_INTERVAL`, as `demo-train --timing grid` trains on;
about 20 CPU-seconds per model at one thread)
"""

import argparse

import torch

from magnetkit import load
from magnetkit_synth.dataset import make_clip

CLIPS, FRAMES, RATES, SPAN = 24, 150, (0.3, 0.6, 0.9), 3


def arpeggio_clips(count: int, timing: str = "free") -> list:
    """The first ``count`` arpeggio clips of the validation split (seed 0), at least 3 s long."""
    found, index = [], 0
    while len(found) < count:
        clip = make_clip(0, "valid", index, timing=timing)
        if clip.attributes.pattern == "arpeggio" and clip.duration >= FRAMES / 50:
            found.append(clip)
        index += 1
    return found


def probe(source: str | None, clips: list) -> dict[float, tuple[float, int, float, int]]:
    """Per mask rate: (accuracy where the note goes on, frames; accuracy at other tokens, frames)."""
    pipeline = load(source)
    model, mask_id = pipeline.model, pipeline.model.config.mask_id
    generator = torch.Generator().manual_seed(0)
    counts = {rate: [0, 0, 0, 0] for rate in RATES}
    for clip in clips:
        codes = pipeline.codec.encode(torch.from_numpy(clip.audio)[None, None])[..., :FRAMES]
        condition = pipeline.conditioner([clip.caption]).embeddings
        truth = codes[0, 0]
        for rate in RATES:
            masked = torch.zeros(FRAMES, dtype=torch.bool)
            while masked.float().mean() < rate:
                start = int(torch.randint(0, FRAMES - SPAN + 1, (1,), generator=generator))
                masked[start:start + SPAN] = True
            inputs = codes.clone()
            inputs[:, 0, masked] = mask_id
            inputs[:, 1:] = mask_id
            with torch.no_grad():
                predicted = model(inputs, condition, 0, stage_only=True)[0, 0].argmax(-1)
            for t in masked.nonzero()[:, 0].tolist():
                visible = [u for u in range(t - 1, -1, -1) if not masked[u]]
                goes_on = bool(visible) and truth[visible[0]] == truth[t]
                slot = 0 if goes_on else 2
                counts[rate][slot] += 1
                counts[rate][slot + 1] += int(predicted[t] == truth[t])
    return {rate: (c[1] / max(c[0], 1), c[0], c[3] / max(c[2], 1), c[2]) for rate, c in counts.items()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=["default"])
    parser.add_argument("--timing", choices=["free", "grid"], default="free")
    args = parser.parse_args()
    torch.set_num_threads(1)
    clips = arpeggio_clips(CLIPS, args.timing)
    for name in args.models:
        for rate, (on, n_on, change, n_change) in probe(None if name == "default" else name, clips).items():
            print(f"{name}: {rate:.0%} masked: note goes on {on:.2f} right ({n_on} frames), "
                  f"other token {change:.2f} right ({n_change} frames)")
