"""Fixtures for the guided-audio tests (the helpers are in audio_support.py)."""

from __future__ import annotations

import pytest
from audio_support import CountingVoice


@pytest.fixture
def espeak() -> CountingVoice:
    from backrub.audio.voices import EspeakLibrary

    return CountingVoice(EspeakLibrary())
