"""A tiny offline T5 for the demo's captions: a word-level tokenizer and a small seeded random encoder.

The demo's captions use a closed vocabulary of about sixty words (`magnetkit_synth.dataset.WORDS`
and the caption templates), so a pretrained T5 is not needed to tell them apart: each caption
word becomes one token, a random frozen T5 encoder keeps token identity (with no layers, the
shipped model's, each token is its embedding, normalised; with layers, the residual stream
carries it through), and the ``t5`` conditioner's learned projection does the rest. Unknown
words fall back to letters, so any prompt tokenizes (the default model's recipe leaves them out
instead: the ``t5`` conditioner's ``unknown_words: drop``). The folder it writes is what the
``t5`` conditioner loads (``conditioner.model``), 0.1-0.2 MB.

A pretrained T5 knows that "bassy" and "low" mean alike; a random one knows nothing. So the
encoder is also told the synonyms of `magnetkit_synth.dataset.VOCABULARY` (`synonyms`): each
synonym that no training caption uses becomes a token with the very embedding of a training word
of the same meaning ("bassy" encodes as "low"), so a model trained on the base captions reads
them without retraining. Which words mean what is given, not learned: a word outside
``VOCABULARY`` stays unknown.
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Iterable, Mapping

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


def synonyms(known: Iterable[str]) -> dict[str, str]:
    """Words of `VOCABULARY`'s phrases that are not in ``known``, each with a known word of the same meaning.

    A word is tied to the attribute value whose phrase uses it ("bassy" and "dark" -> low,
    "brisk" -> fast, "pulse" in "pulse wave" -> square) when no other value's phrases use it
    ("drum" names both the drums and a beat, so it stays unknown) and its phrase has no known
    word of that meaning already: "very" in "very high" and "soft" in "soft sine" only modify the
    word that carries the meaning, so they stay unknown ("very low" must not read as high). A
    tied word stands for its value's first known word that no other value's phrases use ("low",
    "mid-range", "sawtooth", "sustained"...).

    Args:
        known: the training captions' words (`caption_words`).

    Returns:
        ``{synonym: known word}``, sorted by synonym.
    """
    from magnetkit_synth.dataset import VOCABULARY, WORDS

    known = set(known)
    meanings: dict[str, set[tuple[str, str]]] = {}  # word -> the (attribute, value)s whose phrases use it
    for name, values in VOCABULARY.items():
        for value, phrases in values.items():
            for word in " ".join(phrases).split():
                meanings.setdefault(word, set()).add((name, value))
    ties = {}
    for name, values in VOCABULARY.items():
        for value, phrases in values.items():
            # training words that mean this value and no other
            own = {w for w, means in meanings.items() if w in known and means == {(name, value)}}
            canonical = [w for w in " ".join(WORDS[name][value]).split() if w in own]
            for phrase in phrases:
                if canonical and own.isdisjoint(phrase.split()):
                    ties.update({w: canonical[0] for w in phrase.split()
                                 if w not in known and meanings[w] == {(name, value)}})
    return dict(sorted(ties.items()))


def add_synonyms(folder: str | Path, ties: Mapping[str, str]) -> Path:
    """Give a caption encoder written by `build_caption_encoder` the words of ``ties``, each embedded as its known word.

    The tokenizer is rebuilt with the new words and the embedding rows are copied by token, so
    every word the encoder knew encodes exactly as before: a model trained with the folder
    needs no retraining. Words it already knows are left as they are.

    Args:
        folder: the caption encoder (rewritten in place).
        ties: ``{new word: known word}``, as `synonyms` returns.

    Returns:
        The folder.

    Raises:
        UsageError: a tie names a word the encoder does not know.
    """
    from transformers import T5EncoderModel, T5Tokenizer

    folder = Path(folder)
    info = json.loads((folder / INFO_FILE).read_text())
    words = info["words"]
    missing = sorted({known for known in ties.values() if known not in words})
    if missing:
        raise UsageError(f"{folder}: cannot tie synonyms to unknown words {', '.join(missing)}")
    ties = {word: known for word, known in ties.items() if word not in words}
    old_tokenizer = T5Tokenizer.from_pretrained(str(folder))
    encoder = T5EncoderModel.from_pretrained(str(folder)).eval()
    tokenizer = build_tokenizer(sorted({*words, *info.get("synonyms", {}), *ties}))
    ties = {**info.get("synonyms", {}), **ties}
    old_ids = old_tokenizer.get_vocab()
    rows = [old_ids[METASPACE + ties[token[1:]] if token[1:] in ties else token]
            for token, _ in sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])]
    table = encoder.get_input_embeddings().weight.detach()[rows].clone()
    with torch.random.fork_rng(devices=[]):  # resizing initialises the new rows: keep the caller's generator
        encoder.resize_token_embeddings(len(rows), mean_resizing=False)
    encoder.get_input_embeddings().weight.data.copy_(table)
    tokenizer.save_pretrained(str(folder))
    encoder.save_pretrained(str(folder))
    (folder / INFO_FILE).write_text(json.dumps({**info, "synonyms": dict(sorted(ties.items()))}, indent=1) + "\n")
    return folder


def build_caption_encoder(texts: Iterable[str], folder: str | Path, *, d_model: int = 128,
                          num_layers: int = CAPTION_LAYERS,
                          num_heads: int = 4, d_ff: int = 256, seed: int = 0,
                          with_synonyms: bool = True) -> Path:
    """Write a caption tokenizer and a seeded random ``T5EncoderModel`` into ``folder``.

    Args:
        texts: the training captions (their words become the vocabulary).
        folder: output folder, loadable as ``conditioner: {name: t5, model: <folder>}``.
        d_model: encoder width; num_layers, num_heads, d_ff: its size. With ``num_layers=0`` each
            word encodes alone (embedding and final norm): a bag of words, whatever the other words.
        seed: seeds the random weights, so the same captions always give the same encoder.
        with_synonyms: also give it `synonyms` of the caption words (`add_synonyms`); the
            training words encode the same either way.

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
    if with_synonyms:
        add_synonyms(folder, synonyms(words))
    return folder
