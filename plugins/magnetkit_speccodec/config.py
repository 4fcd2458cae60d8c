"""The speccodec's pydantic configs (codec section, representation, fitting): free of torch, so plugin
registration, `magnetkit validate` and the ``fit-codec`` command line import only this."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from magnetkit_synth.analysis import HOP as PITCH_HOP
from magnetkit_synth.dataset import SAMPLE_RATE


class SpecCodecConfig(BaseModel):
    """Parameters of the ``speccodec`` codec (the recipe's ``codec`` section)."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, description=(
        "folder holding speccodec.json + speccodec.safetensors (`magnetkit fit-codec` writes one); "
        "None = the codec shipped with the plugin"))
    griffin_lim_iters: int = Field(32, ge=0, le=1000, description=(
        "Griffin-Lim iterations when decoding (0 = phase-vocoder phases only: faster, rougher)"))


class SpecParams(BaseModel):
    """The fixed representation a fitted codec was built with (stored in speccodec.json)."""

    model_config = ConfigDict(extra="forbid")

    sample_rate: int = SAMPLE_RATE
    n_fft: int = 1024
    hop: int = Field(160, description="STFT hop in samples; a multiple of the 80-sample pitch-analysis hop")
    frames_per_token: int = Field(2, ge=1)
    floor: float = Field(0.01, gt=0, description="added to |X| / token gain before the log: -40 dB re the token peak")
    decode_gate: float = Field(1.5, ge=1.0, description=(
        "decoded levels below this multiple of the floor become silence: quantisation noise around the floor "
        "otherwise sums over hundreds of bins into a hiss that flickers from token to token and reads as onsets"))
    gain_floor: float = Field(1e-3, gt=0, description="smallest frame gain (|X| units): silence")
    pitch_weight: float = Field(10.0, ge=0, description="scale of the pitch dimensions (per semitone)")
    unvoiced_pitch: float = Field(-24.0, description="pitch value (semitones re 55 Hz) of unpitched frames")
    cardinality: int = Field(512, ge=2)
    shape_levels: int = Field(3, ge=1)

    @model_validator(mode="after")
    def _fits_the_pitch_analysis(self) -> SpecParams:
        # The pitch dimensions come from magnetkit_synth.analysis: 16 kHz, one f0 every 80 samples.
        if self.sample_rate != SAMPLE_RATE:
            raise ValueError(f"sample_rate must be {SAMPLE_RATE} (the pitch analysis runs at that rate)")
        if self.hop % PITCH_HOP:
            raise ValueError(f"hop must be a multiple of {PITCH_HOP} samples (the pitch analysis hop)")
        if self.n_fft < self.hop:
            raise ValueError("n_fft must be at least the hop")
        return self


class FitConfig(BaseModel):
    """How a speccodec is fitted: its representation and the k-means budget."""

    model_config = ConfigDict(extra="forbid")

    params: SpecParams = Field(default_factory=SpecParams)
    tokens_per_clip: int = Field(40, ge=1, description=(
        "random tokens kept from each clip: many short samples cover more pitches and timbres than a few whole clips"))
    kmeans_iters: int = Field(10, ge=1)
    max_clips: int | None = Field(None, ge=1, description="use at most this many files of the source")
    seed: int = 0
