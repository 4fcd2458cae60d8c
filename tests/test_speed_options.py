"""Every speed option of the decoder changes no output: greedy codes stay audiocraft's, on or off."""

import dataclasses
import itertools

import numpy as np
import pytest
import torch

from magnetkit.engine import DecodeOptions, Decoder, Guidance, guide, plan_stage
from magnetkit.errors import UsageError
from magnetkit.loading import load

GREEDY = ["sampler.name=greedy", "sampler.temperature=3.0", "generation.progress=false"]
STEPS = [4, 2, 2, 2]

VARIANTS = {
    "defaults": DecodeOptions(),
    "cross_cache off": DecodeOptions(cross_cache=False),
    "stage_only off": DecodeOptions(stage_only=False),
    "blocked_attention off": DecodeOptions(blocked_attention=False),
    "check_every_step on": DecodeOptions(check_every_step=True),
    "masked_only off": DecodeOptions(masked_only=False),
    "masked_only on": DecodeOptions(masked_only=True),
    "cpu_kernels off": DecodeOptions(cpu_kernels=False),
    "all off": DecodeOptions(cross_cache=False, stage_only=False, skip_unit_guidance=False,
                             blocked_attention=False, check_every_step=True, masked_only=False, cpu_kernels=False),
    # The eager backend traces the transformer with dynamo but runs it unchanged, so codes must match.
    "compile (eager backend)": DecodeOptions(compile=True, compile_backend="eager"),
}


@pytest.fixture(scope="module")
def pipeline(tiny_dir):
    components = [f"conditioner.model={tiny_dir}/t5_random", f"codec.model={tiny_dir}/hf_encodec_32khz_random"]
    return load(tiny_dir, components + GREEDY, device="cpu")


def decode(pipeline, options: DecodeOptions, texts, frames: int, guidance: Guidance | None = None,
           model=None) -> torch.Tensor:
    """One window decoded with ``options`` (what `Pipeline._run` does, with the options given)."""
    guidance = guidance or pipeline.guidance(texts, None)
    decoder = Decoder(model or pipeline.model, pipeline.scheduler, pipeline.sampler, options=options)
    return decoder.generate(len(texts), frames, STEPS, guidance, None, torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", list(VARIANTS))
def test_each_option_keeps_audiocraft_greedy_codes(pipeline, reference, name):
    codes = decode(pipeline, VARIANTS[name], ["happy rock", "sad piano"], 150)
    np.testing.assert_array_equal(codes.numpy(), reference["gen_a_codes"])


@pytest.mark.parametrize("stream", [False, True])
def test_masked_only_samples_just_the_generated_positions(pipeline, stream):
    from magnetkit_samplers import TopPConfig, TopPSampler

    sampled = []

    class Spy(TopPSampler):
        def __call__(self, logits, step, num_steps, **kwargs):
            sampled.append((step, num_steps, tuple(logits.shape[:2])))
            return super().__call__(logits, step, num_steps, **kwargs)

    sampler = Spy(TopPConfig(audiocraft_stream=stream))
    decoder = Decoder(pipeline.model, pipeline.scheduler, sampler, options=DecodeOptions())
    guidance = pipeline.guidance(["happy rock", "sad piano"], None)
    codes = decoder.generate(2, 150, STEPS, guidance, None, torch.Generator().manual_seed(0))
    assert (codes != pipeline.model.config.mask_id).all()
    if stream:  # audiocraft's random stream needs the whole [B, T] layout
        assert {shape for _, _, shape in sampled} == {(2, 150)} and len(sampled) == sum(STEPS)
    else:  # each step samples the masked units' positions only (2 rows x num_masked x span 3), in chunks
        per_step = [sum(shape[1] for _, _, shape in group) for _, group in itertools.groupby(sampled, lambda c: c[:2])]
        plans = [plan for n in STEPS for plan in plan_stage(pipeline.scheduler, guidance, n, 50)]
        assert per_step == [2 * plan.num_masked * 3 for plan in plans]
        assert per_step[0] == 300 and per_step[-1] < 300
        assert {shape[0] for _, _, shape in sampled} == {1} and max(shape[1] for _, _, shape in sampled) == 256


def test_unit_guidance_skips_the_null_rows_and_keeps_the_codes(pipeline):
    texts = ["happy rock", "sad piano"]
    guidance = dataclasses.replace(pipeline.guidance(texts, None), cfg_max=1.0, cfg_min=1.0)
    rows = []

    class Counting(Decoder):
        def transformer_logits(self, codes, *args):
            rows.append(codes.shape[0])
            return super().transformer_logits(codes, *args)

    def run(skip: bool) -> torch.Tensor:
        rows.clear()
        decoder = Counting(pipeline.model, pipeline.scheduler, pipeline.sampler,
                           options=DecodeOptions(skip_unit_guidance=skip))
        return decoder.generate(2, 150, STEPS, guidance, None, torch.Generator().manual_seed(0)), list(rows)

    (skipped, skipped_rows), (full, full_rows) = run(True), run(False)
    assert skipped_rows == [2] * sum(STEPS) and full_rows == [4] * sum(STEPS)
    assert torch.equal(skipped, full)


def test_unit_guidance_is_not_skipped_when_the_coefficient_is_not_one(pipeline):
    guidance = pipeline.guidance(["happy rock"], None)  # 10 -> 1: the last step's float rate is not exactly 0
    plans = plan_stage(pipeline.scheduler, guidance, 10, 50)
    assert plans[0].coefficient == 10.0 and all(plan.coefficient != 1.0 for plan in plans)


def test_autocast_runs_and_gives_valid_codes(pipeline):
    codes = decode(pipeline, DecodeOptions(autocast="bf16"), ["happy rock"], 60)
    assert codes.shape == (1, 4, 60) and codes.min() >= 0 and codes.max() < 2048


def test_model_wrappers_get_the_declared_keywords_and_keep_the_codes(pipeline, reference):
    """The engine's model contract is `magnetkit.interfaces.DecodingModel`: every keyword, always passed."""
    model, seen = pipeline.model, []

    class Wrapper:
        config = model.config

        def cross_attention_cache(self, condition):
            return model.cross_attention_cache(condition)

        def __call__(self, codes, condition, stage, *, stage_only=False, cross_cache=None, blocked_attention=True,
                     check_values=True):
            seen.append((blocked_attention, check_values))
            return model(codes, condition, stage, stage_only=stage_only, cross_cache=cross_cache)

    codes = decode(pipeline, DecodeOptions(blocked_attention=False), ["happy rock", "sad piano"], 150, model=Wrapper())
    np.testing.assert_array_equal(codes.numpy(), reference["gen_a_codes"])
    assert set(seen) == {(False, False)}


def test_components_missing_a_declared_member_fail_in_one_line(pipeline):
    class OldSampler:  # no positionwise, no check_stages: the contract before they were declared
        span_scoring = "max"

        def __call__(self, logits, step, num_steps, generator=None, stage=None):
            return logits.argmax(-1), torch.ones(logits.shape[:2])

    with pytest.raises(UsageError, match=r"the sampler OldSampler lacks positionwise, check_stages "
                                         r"\(see magnetkit.interfaces.Sampler\)"):
        Decoder(pipeline.model, pipeline.scheduler, OldSampler())
    with pytest.raises(UsageError, match="the model object lacks config, cross_attention_cache"):
        Decoder(object(), pipeline.scheduler, pipeline.sampler)


def test_known_codes_are_checked_once_up_front(pipeline):
    from magnetkit.engine import Known

    guidance = pipeline.guidance(["happy rock"], None)
    known = Known.prefix(torch.full((1, 4, 6), 5000), 60)
    decoder = Decoder(pipeline.model, pipeline.scheduler, pipeline.sampler)
    with pytest.raises(UsageError, match=r"known codes must lie in \[0, 2048\]"):
        decoder.generate(1, 60, STEPS, guidance, known)


def test_guide_in_one_buffer_equals_the_plain_expression():
    logits = torch.randn(6, 50, 64, generator=torch.Generator().manual_seed(1)) * 5
    cond, null = logits.split(3)
    for coefficient in (10.0, 3.3, 1.0, 0.999999):
        assert torch.equal(guide(logits, 3, coefficient), null + (cond - null) * coefficient)


@pytest.mark.parametrize("kwargs, message", [
    ({"cuda_graphs": True}, "need compile=True"),
    ({"compile_freeze": True}, "need compile=True"),
    ({"autocast": "int8"}, "autocast must be"),
])
def test_options_refuse_impossible_settings(kwargs, message):
    with pytest.raises(UsageError, match=message):
        DecodeOptions(**kwargs)


def test_the_engine_tells_samplers_that_take_it_which_stage_they_decode(pipeline):
    from magnetkit_samplers import GreedyConfig, GreedySampler

    stages = []

    class Recording(GreedySampler):
        def __call__(self, logits, step, num_steps, generator=None, stage=None):
            stages.append(stage)
            return super().__call__(logits, step, num_steps, generator, stage)

    guidance = pipeline.guidance(["happy rock"], None)
    sampler = Recording(GreedyConfig(stage_temperatures=[3.0, 1.0, 1.0, 1.0]))
    Decoder(pipeline.model, pipeline.scheduler, sampler, options=DecodeOptions(masked_only=False)).generate(
        1, 150, STEPS, guidance, None, torch.Generator().manual_seed(0))
    assert stages == [0] * 4 + [1] * 2 + [2] * 2 + [3] * 2
    wrong = GreedySampler(GreedyConfig(stage_temperatures=[3.0, 1.0]))
    with pytest.raises(UsageError, match="stage_temperatures has 2 entries; the model has 4 codebooks"):
        Decoder(pipeline.model, pipeline.scheduler, wrong).generate(1, 150, STEPS, guidance, None, None)
