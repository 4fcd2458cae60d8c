"""MusicGen (transformers' ``MusicgenForConditionalGeneration``) as a rescorer and a prefix decoder.

* Rescorer (paper §3.3, Eq. 5): one teacher-forced pass over the whole candidate sequence, in
  MusicGen's delay pattern, gives each token's probability under MusicGen; the engine mixes it
  with MAGNeT's, p = w * p_magnet + (1 - w) * p_musicgen, to choose which spans to re-mask.
* Autoregressive model (paper §3.4, two-model hybrid): `start` opens a KV-cached session that
  `magnetkit.hybrid.decode_prefix` drives column by column.

Both MusicGen and MAGNeT use the cardinality as their special token (MusicGen's pad/start,
MAGNeT's mask), so codebooks MAGNeT has not decoded yet reach MusicGen as its special token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from magnetkit import (
    CheckpointError,
    RecipeError,
    delay,
    from_pretrained,
    guide,
    teacher_forcing_inputs,
    token_space_problems,
    undelay,
)
from magnetkit_musicgen.config import MusicgenConfig

_WHAT = "MusicGen model"
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def load_musicgen(source: str, dtype: torch.dtype = torch.float32) -> tuple[Any, Any]:
    """A mono ``MusicgenForConditionalGeneration`` and its tokenizer, from a hub id or a folder.

    Raises:
        HubUnavailableError: a hub id that is not cached while offline.
        CheckpointError: a missing, incomplete or unsupported (stereo, melody) model.
    """
    from transformers import AutoTokenizer, MusicgenForConditionalGeneration

    def load(target: str):
        return MusicgenForConditionalGeneration.from_pretrained(target, output_loading_info=True, dtype=dtype)

    model, info = from_pretrained(load, source, what=_WHAT)
    missing = sorted(info.get("missing_keys") or ()) + sorted(info.get("mismatched_keys") or ())
    if missing:
        raise CheckpointError(f"{_WHAT} {source!r} is incomplete: {len(missing)} weight(s) missing or "
                              f"mis-shaped, e.g. {missing[0]}")
    decoder = model.config.decoder
    if decoder.audio_channels != 1:
        raise CheckpointError(f"{_WHAT} {source!r} is stereo; MAGNeT's token space is mono, use a mono MusicGen")
    if decoder.pad_token_id != decoder.vocab_size:
        raise CheckpointError(f"{_WHAT} {source!r} uses pad token {decoder.pad_token_id}; MAGNeT's special "
                              f"token is the cardinality ({decoder.vocab_size})")
    tokenizer = from_pretrained(AutoTokenizer.from_pretrained, source, what=f"{_WHAT}'s tokenizer")
    probe = tokenizer(["an upbeat rock song"]).input_ids[0]
    if tokenizer.unk_token_id is not None and all(t in (tokenizer.unk_token_id, tokenizer.eos_token_id) for t in probe):
        raise CheckpointError(f"{_WHAT} {source!r}: its tokenizer maps every word to <unk> (no vocabulary file?)")
    return model.eval().requires_grad_(False), tokenizer


class MusicgenSession:
    """One KV-cached autoregressive run of MusicGen's decoder over fixed condition rows."""

    def __init__(self, decoder: torch.nn.Module, states: torch.Tensor, mask: torch.Tensor, num_codebooks: int):
        self.decoder, self.states, self.mask = decoder, states, mask
        self.num_codebooks = num_codebooks
        self.cache = None

    @torch.no_grad()
    def step(self, column: torch.Tensor) -> torch.Tensor:
        """[R, K] codes of the next delayed input column -> [R, K, card] logits of the column after it."""
        rows = column.shape[0]
        out = self.decoder(input_ids=column.reshape(rows * self.num_codebooks, 1), encoder_hidden_states=self.states,
                           encoder_attention_mask=self.mask, past_key_values=self.cache, use_cache=True)
        self.cache = out.past_key_values
        return out.logits.reshape(rows, self.num_codebooks, -1).float()


class MusicgenModel:
    """MusicGen over MAGNeT's token space: a `Rescorer` and a `magnetkit.hybrid.AutoregressiveModel`."""

    def __init__(self, model: Any, tokenizer: Any, config: MusicgenConfig, device: torch.device | str = "cpu"):
        self.model = model.to(device)
        self.tokenizer = tokenizer
        self.config = config
        self.device = torch.device(device)
        self.weight: float = config.weight
        decoder, audio = model.config.decoder, model.config.audio_encoder
        self.num_codebooks: int = int(decoder.num_codebooks)
        self.cardinality: int = int(decoder.vocab_size)
        self.sample_rate: int = int(audio.sampling_rate)
        hop = 1
        for ratio in audio.upsampling_ratios:
            hop *= int(ratio)
        self.frame_rate: float = self.sample_rate / hop
        self._encoded: tuple[tuple[str | None, ...], tuple[torch.Tensor, torch.Tensor]] | None = None

    # -- Rescorer -----------------------------------------------------------------------------
    def applies(self, stage: int, step: int) -> bool:
        """Whether the recipe's ``stages`` and ``steps`` include this one."""
        config = self.config
        return (config.stages is None or stage in config.stages) and (config.steps is None or step in config.steps)

    @torch.no_grad()
    def token_probs(self, codes: torch.Tensor, texts: Sequence[str | None]) -> torch.Tensor:
        """[B, K, T] candidate codes -> [B, K, T] MusicGen probability of each code, one teacher-forced pass.

        Codes equal to the cardinality (MAGNeT's mask) are fed as MusicGen's special token and
        get probability 0.
        """
        batch, _, frames = codes.shape
        codes = codes.to(self.device)
        guided = self.config.guidance_scale != 1
        rows = list(texts) + ([None] * batch if guided else [])
        states, mask = self._encode(rows)
        inputs = teacher_forcing_inputs(codes, self.cardinality)  # [B, K, C]
        inputs = inputs.repeat(len(rows) // batch, 1, 1)
        columns = inputs.shape[-1]
        logits = self.model.decoder(input_ids=inputs.reshape(-1, columns), encoder_hidden_states=states,
                                    encoder_attention_mask=mask).logits  # [R*K, C, card]
        logits = logits.reshape(len(rows), self.num_codebooks, columns, -1).float()
        if guided:
            logits = guide(logits, batch, self.config.guidance_scale)
        probs = torch.softmax(logits / self.config.temperature, dim=-1)  # [B, K, C, card]
        targets = delay(codes, self.cardinality).clamp(max=self.cardinality - 1)  # special cells are dropped below
        picked = undelay(probs.gather(-1, targets[..., None])[..., 0], frames)  # [B, K, T]
        return picked.masked_fill(codes >= self.cardinality, 0.0)

    # -- AutoregressiveModel -------------------------------------------------------------------
    def start(self, texts: Sequence[str | None]) -> MusicgenSession:
        """A KV-cached decoding session with one condition row per text (None = the null condition)."""
        states, mask = self._encode(list(texts))
        return MusicgenSession(self.model.decoder, states, mask, self.num_codebooks)

    # -- helpers ------------------------------------------------------------------------------
    @torch.no_grad()
    def _encode(self, texts: list[str | None]) -> tuple[torch.Tensor, torch.Tensor]:
        """Text encoder states [R, L, D] and mask [R, L], as MusicGen's own forward prepares them.

        A None row is MusicGen's null condition (zero states, zero mask), as its guidance uses.
        The last batch is cached: the engine rescores the same texts at every step.
        """
        key = tuple(texts)
        if self._encoded is not None and self._encoded[0] == key:
            return self._encoded[1]
        tokens = self.tokenizer([t or "" for t in texts], padding=True, return_tensors="pt").to(self.device)
        mask = tokens.attention_mask
        mask[[i for i, t in enumerate(texts) if t is None]] = 0
        states = self.model.text_encoder(input_ids=tokens.input_ids, attention_mask=mask).last_hidden_state
        if getattr(self.model, "enc_to_dec_proj", None) is not None:
            states = self.model.enc_to_dec_proj(states)
        states = states * mask[..., None].to(states.dtype)
        self._encoded = (key, (states, mask))
        return states, mask


# ------------------------------------------------------------------------------ compatibility
def codebook_mismatch(musicgen: MusicgenModel, codec: Any) -> str | None:
    """Why MusicGen's EnCodec codebooks differ from the codec's, when both are transformers EnCodec models."""
    from transformers import EncodecModel

    theirs = getattr(codec, "model", None)
    if not isinstance(theirs, EncodecModel):
        return None  # another codec implementation: its numbers were compared, its weights cannot be
    ours = musicgen.model.audio_encoder
    for k in range(musicgen.num_codebooks):
        if k >= len(theirs.quantizer.layers):
            return f"the codec has only {len(theirs.quantizer.layers)} codebooks"
        a = ours.quantizer.layers[k].codebook.embed.float().cpu()
        b = theirs.quantizer.layers[k].codebook.embed.float().cpu()
        if a.shape != b.shape or not torch.allclose(a, b, rtol=1e-3, atol=1e-4):
            return f"codebook {k} of MusicGen's EnCodec differs from the codec's: the two models use different codecs"
    return None


def build_musicgen(config: MusicgenConfig, *, pipeline: Any = None, role: str = "rescorer") -> MusicgenModel:
    """MusicGen (transformers) as rescorer (paper Eq. 5) and as a hybrid's autoregressive model.

    With a ``pipeline``, MusicGen runs on its device and must share its token space (codec,
    codebooks, cardinality, frame rate); every mismatch is reported under ``role``.
    """
    model, tokenizer = load_musicgen(config.model, _DTYPES[config.dtype])
    device = "cpu" if pipeline is None else pipeline.device
    musicgen = MusicgenModel(model, tokenizer, config, device)
    if pipeline is not None:
        where = f"{role}.model ({config.model})"
        transformer = pipeline.model.config
        problems = token_space_problems(musicgen, pipeline.codec, transformer.num_codebooks,
                                        transformer.cardinality, where)
        mismatch = None if problems else codebook_mismatch(musicgen, pipeline.codec)
        if problems or mismatch:
            raise RecipeError(problems or [f"{where}: {mismatch}"])
    return musicgen
