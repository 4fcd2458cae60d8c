"""The delay pattern helpers against transformers' own MusicGen pattern."""

import torch

from magnetkit.hybrid.pattern import delay, delayed_columns, pattern_mask, prefix_block, teacher_forcing_inputs, undelay

S = 99  # a special token (above every code used here)


def test_delay_shifts_codebook_k_by_k_and_undelay_inverts_it():
    codes = torch.arange(12).reshape(1, 3, 4)
    delayed = delay(codes, S)
    assert delayed.tolist() == [[[0, 1, 2, 3, S, S], [S, 4, 5, 6, 7, S], [S, S, 8, 9, 10, 11]]]
    assert torch.equal(undelay(delayed, 4), codes)
    assert torch.equal(pattern_mask(4, 3), delayed[0] != S)
    assert delayed_columns(4, 3) == 6


def test_teacher_forcing_and_prefix_block_start_with_the_special_column():
    codes = torch.arange(12).reshape(1, 3, 4)
    inputs = teacher_forcing_inputs(codes, S)
    assert inputs.shape == (1, 3, 6)  # start column + T + K - 2 delayed columns
    assert torch.equal(inputs[..., 0], torch.full((1, 3), S))
    assert torch.equal(inputs[..., 1:], delay(codes, S)[..., :-1])
    block = prefix_block(codes, S)
    assert block.shape == (1, 3, 7) and torch.equal(block[..., 1:], delay(codes, S))  # the last column is kept


def test_layout_matches_transformers_musicgen_pattern():
    from transformers import MusicgenDecoderConfig, MusicgenForCausalLM

    decoder = MusicgenForCausalLM(MusicgenDecoderConfig(vocab_size=S, hidden_size=8, num_hidden_layers=1,
                                                        num_attention_heads=1, ffn_dim=8, num_codebooks=3,
                                                        pad_token_id=S, bos_token_id=S, decoder_start_token_id=S))
    codes = torch.randint(0, S, (2, 3, 5))
    start = torch.full((2, 3, 1), S)
    # transformers shifts a [start, codes] prompt into its delay pattern: the whole teacher-forced sequence.
    _, pattern = decoder.build_delay_pattern_mask(torch.cat([start, codes], -1).reshape(6, -1), pad_token_id=S,
                                                  max_length=5 + 3)
    full = torch.cat([start, delay(codes, S)], dim=-1)
    assert torch.equal(pattern.reshape(2, 3, -1), full)
