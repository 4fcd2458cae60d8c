"""Tools for testing magnetkit components: tiny fakes and reusable contract suites.

A plugin author checks an implementation in seconds, e.g.
``from magnetkit.testing import check_codec; check_codec(my_codec)``.
"""

from magnetkit.testing.codec_contract import CodecContract, check_codec
from magnetkit.testing.conditioner_contract import check_conditioner
from magnetkit.testing.embedder_contract import check_embedder
from magnetkit.testing.rescorer_contract import RescorerContract, check_rescorer
from magnetkit.testing.sampler_contract import check_sampler
from magnetkit.testing.scheduler_contract import check_scheduler
from magnetkit.testing.fakes import (
    FakeCodec,
    FakeCodecConfig,
    FakeConditioner,
    FakeConditionerConfig,
    FakePlugin,
    sine,
)

__all__ = [
    "CodecContract",
    "check_codec",
    "FakeCodec",
    "FakeCodecConfig",
    "FakeConditioner",
    "FakeConditionerConfig",
    "FakePlugin",
    "check_conditioner",
    "check_embedder",
    "check_rescorer",
    "RescorerContract",
    "check_sampler",
    "check_scheduler",
    "sine",
]
