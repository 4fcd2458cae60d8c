"""A tiny offline T5 for the demo's captions: a word-level tokenizer and a small seeded random encoder.

The demo's captions use a closed vocabulary of about sixty words (`magnetkit_synth.dataset.WORDS`
and the caption templates), so a pretrained T5 is not needed to tell them apart: each caption
word becomes one token, a random frozen T5 encoder keeps token identity (with no layers, the
shipped model's, each token is its embedding, normalised; with layers, the residual stream
carries it through), and the ``t5`` conditioner's learned projection does the rest. Unknown
words fall back to letters, so any prompt tokenizes (the default model's recipe leaves them out
instead: the ``t5`` conditioner's ``unknown_words: drop``). The folder it writes is what the
``t5`` conditioner loads (``conditioner.model``), 0.1-0.2 MB.
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Iterable

import torch

from magnetkit import UsageError
from magnetkit_demo.config import CAPTION_LAYERS

METASPACE = "\u2581"  # sentencepiece's word-boundary mark
# Every character a prompt may contain maps to a token, so a new word is spelled out, not dropped.
FALLBACK_CHARS = string.ascii_letters + string.digits + "-,.'!?;:()/&+"
INFO_FILE = "caption-encoder.json"


def caption_words(texts: Iterable[str]) -> list[str]:
    """The sorted distinct words of ``texts``, each also without trailing punctuation."""
    words: set[str] = set()
    for text in texts:
        for word in text.split():
            words.add(word)
            if word.rstrip(",.;:!?"):
                words.add(word.rstrip(",.;:!?"))
    return sorted(words)


def build_tokenizer(words: list[str]):
    """A T5 (unigram) tokenizer whose vocabulary is ``words`` as whole tokens, letters as fallback."""
    from transformers import T5Tokenizer

    if not words:
        raise UsageError("the caption tokenizer needs at least one caption word")
    # Whole words score far above the letters, so a known word is always one token.
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    vocab += [(METASPACE + word, -1.0) for word in words]
    vocab += [(METASPACE, -5.0)] + [(ch, -10.0) for ch in FALLBACK_CHARS]
    # No normaliser: transformers' T5Tokenizer rebuilds its pipeline from the vocabulary when it
    # loads, dropping any saved one, so prompts are matched as typed (the captions are lower case).
    return T5Tokenizer(vocab=vocab, extra_ids=0)


def build_caption_encoder(texts: Iterable[str], folder: str | Path, *, d_model: int = 128,
                          num_layers: int = CAPTION_LAYERS,
                          num_heads: int = 4, d_ff: int = 256, seed: int = 0) -> Path:
    """Write a caption tokenizer and a seeded random ``T5EncoderModel`` into ``folder``.

    Args:
        texts: the training captions (their words become the vocabulary).
        folder: output folder, loadable as ``conditioner: {name: t5, model: <folder>}``.
        d_model: encoder width; num_layers, num_heads, d_ff: its size. With ``num_layers=0`` each
            word encodes alone (embedding and final norm): a bag of words, whatever the other words.
        seed: seeds the random weights, so the same captions always give the same encoder.

    Returns:
        The folder.

    Raises:
        UsageError: no caption words, or fewer than 0 layers.
    """
    from transformers import T5Config, T5EncoderModel

    if num_layers < 0:
        raise UsageError(f"the caption encoder needs at least 0 layers, got {num_layers}")

    words = caption_words(texts)
    tokenizer = build_tokenizer(words)
    config = T5Config(vocab_size=len(tokenizer), d_model=d_model, d_kv=d_model // num_heads, d_ff=d_ff,
                      num_layers=num_layers, num_heads=num_heads, feed_forward_proj="relu", dropout_rate=0.0,
                      is_encoder_decoder=False, use_cache=False, pad_token_id=0, eos_token_id=1,
                      decoder_start_token_id=0)
    with torch.random.fork_rng(devices=[]):  # seeded weights without disturbing the caller's generator
        torch.manual_seed(seed)
        encoder = T5EncoderModel(config).eval()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(folder))
    encoder.save_pretrained(str(folder))
    info = {"words": words, "seed": seed, "d_model": d_model, "num_layers": num_layers, "num_heads": num_heads,
            "d_ff": d_ff}
    (folder / INFO_FILE).write_text(json.dumps(info, indent=1) + "\n")
    return folder
