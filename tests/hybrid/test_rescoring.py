"""Rescoring (paper §3.3, Eq. 5) through the engine: MusicGen end to end, w = 1, steering, stages/steps."""

import pytest
import torch
from hybrid_helpers import CARD, make_pipeline, tiny_model

from magnetkit.hybrid import HybridGenerator

TEXTS = ["bright synth arpeggio", "slow dark drone", "fast drums", "calm piano"]
STEERING = ("generation.decoding_steps=[10,4,4,4]", "sampler.name=top_p", "sampler.temperature=8.0")


def musicgen(musicgen_dir, **params):
    return {"rescorer": {"name": "musicgen", "model": str(musicgen_dir), **params}}


def test_weight_one_generates_exactly_what_no_rescorer_generates(fakes, musicgen_dir):
    plain = make_pipeline().generate(TEXTS[:2], seed=7)
    pipe = make_pipeline(recipe=musicgen(musicgen_dir, weight=1.0))
    calls = []
    pipe.rescorer.token_probs = lambda codes, texts: calls.append(1)
    assert torch.equal(pipe.generate(TEXTS[:2], seed=7).codes, plain.codes) and not calls


def test_musicgen_rescoring_runs_end_to_end_and_changes_the_choice(fakes, musicgen_dir):
    plain = make_pipeline(*STEERING).generate(TEXTS, seed=3)
    pipe = make_pipeline(*STEERING, recipe=musicgen(musicgen_dir, weight=0.0, temperature=0.05))
    rescored = pipe.generate(TEXTS, seed=3)
    assert rescored.codes.shape == plain.codes.shape and rescored.codes.max() < CARD
    assert not torch.equal(rescored.codes, plain.codes)
    again = pipe.generate(TEXTS, seed=3)
    assert torch.equal(again.codes, rescored.codes)


@pytest.mark.parametrize("scoring", ["max", "prod"])
def test_a_rescorer_that_prefers_some_codes_steers_which_spans_are_kept(prefer_low, scoring):
    """A rescorer sure of the low codes makes MAGNeT keep the spans that hold them.

    A span scores by its most probable code ("max": a span with one low code is kept) or by the
    product of its codes' probabilities ("prod": spans of low codes are kept).
    """
    def shares(recipe=None):
        codes = torch.cat([make_pipeline(*STEERING, f"sampler.span_scoring={scoring}", recipe=recipe)
                           .generate(TEXTS, seed=s).codes for s in range(18)])
        low = codes[:, 0] < CARD // 2  # [B, T] stage 0
        spans_with_low = low.reshape(low.shape[0], -1, 3).any(-1)  # the 3-frame decoding spans
        return float(low.float().mean()), float(spans_with_low.float().mean())

    low_alone, spans_alone = shares()
    low_steered, spans_steered = shares({"rescorer": {"name": "prefer_low", "weight": 0.05}})
    assert 0.35 < low_alone < 0.65 and spans_alone < 0.9  # about half; 7 in 8 spans by chance
    # 72 clips of 50 spans each: the shares vary by about 0.01 from one set of seeds to another.
    assert spans_steered > spans_alone + 0.05 and spans_steered > 0.9
    if scoring == "prod":
        assert low_steered > low_alone + 0.2


def test_rescoring_applies_only_at_the_recipe_stages_and_steps(fakes, musicgen_dir):
    pipe = make_pipeline(recipe=musicgen(musicgen_dir, weight=0.5, stages=[1, 3], steps=[0]))
    seen = []
    score = pipe.rescorer.token_probs

    def spy(codes, texts):
        stage = int((codes == CARD).any(-1).any(0).float().argmax()) - 1 if (codes == CARD).any() else 3
        seen.append(stage)
        return score(codes, texts)

    pipe.rescorer.token_probs = spy
    pipe.generate(TEXTS[:1], seed=0)
    assert seen == [1, 3]  # one call per listed stage, at step 0 only


def test_single_model_hybrid_rescores_the_whole_sequence(prefer_low):
    pipe = make_pipeline(recipe={"rescorer": {"name": "prefer_low", "weight": 0.5},
                                 "hybrid": {"prefix_seconds": 0.2, "top_k": 1}},
                         model=tiny_model(segment=1.0).eval())
    out = HybridGenerator(pipe).generate(TEXTS[:2], duration=0.96, seed=0)
    assert pipe.rescorer.calls and set(pipe.rescorer.calls) == {(2, 4, out.codes.shape[-1])}
