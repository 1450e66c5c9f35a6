"""The offline voice-over: real speech from espeak-ng, with word timings captions can follow."""

from __future__ import annotations

import io
import wave
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import numpy as np
import pytest

from cutroom.assets import AssetKind, AssetSpec
from providers.errors import ErrorKind, ProviderError
from providers.local.speech import LocalSpeech
from providers.polling import run_job
from providers.protocol import Generator, Output

SENTENCE = "Fresh coffee, roasted daily in Portland. Taste the difference!"
SENTENCE_WORDS = ["Fresh", "coffee,", "roasted", "daily", "in", "Portland.", "Taste", "the", "difference!"]


def spec(text: str, voice: str | None = None) -> AssetSpec:
    return AssetSpec(kind=AssetKind.speech, provider="local", model="espeak-ng", prompt=text, voice=voice)


def speak(text: str, voice: str | None = None) -> Output:
    return LocalSpeech().render(spec(text, voice))


def samples(out: Output) -> tuple[np.ndarray, int]:
    with wave.open(io.BytesIO(out.data)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth()) == (1, 2)
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        return pcm.astype(np.float64), wav.getframerate()


def rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(pcm**2))) if pcm.size else 0.0


def assert_timings_fit(out: Output) -> None:
    assert out.duration_s is not None
    for word in out.words:
        assert 0 <= word.start_s < word.end_s <= out.duration_s, word
    for word, following in pairwise(out.words):
        assert word.end_s <= following.start_s, (word, following)
    assert out.words[-1].end_s > out.duration_s - 0.2, "the last word should end where the speech ends"


def test_a_sentence_becomes_audible_wav_with_a_plausible_pace() -> None:
    out = speak(SENTENCE)
    pcm, rate = samples(out)

    assert out.mime == "audio/wav"
    assert rate == 22050
    assert out.duration_s == pytest.approx(len(pcm) / rate)
    assert out.duration_s > 1.5
    assert rms(pcm) > 1000, "the voice-over is (nearly) silent"
    assert 1.5 <= len(SENTENCE_WORDS) / out.duration_s <= 5


def test_each_spoken_word_gets_one_timing_in_order_while_it_is_heard() -> None:
    out = speak(SENTENCE)
    pcm, rate = samples(out)

    assert [w.word for w in out.words] == SENTENCE_WORDS
    assert_timings_fit(out)
    for word in out.words:
        assert rms(pcm[int(word.start_s * rate) : int(word.end_s * rate)]) > 500, (
            f"{word.word!r} is not heard"
        )
    pause = pcm[int(out.words[1].end_s * rate) : int(out.words[2].start_s * rate)]
    assert pause.size > 0.05 * rate and rms(pause) < 50, "the comma pause should fall between captions"


def test_pauses_fall_at_the_punctuation_and_the_next_word_starts_with_the_voice() -> None:
    out = speak("Yes. I can. A new day, a new roast. O, it is good.")
    pcm, rate = samples(out)

    words = out.words
    expected = ["Yes.", "I", "can.", "A", "new", "day,", "a", "new", "roast.", "O,", "it", "is", "good."]
    assert [w.word for w in words] == expected
    paused = [(before, word) for before, word in pairwise(words) if word.start_s - before.end_s > 0.1]
    assert [before.word for before, _ in paused] == ["Yes.", "can.", "day,", "roast.", "O,"]
    for before, word in paused:
        onset = before.end_s + int(np.argmax(np.abs(pcm[int(before.end_s * rate) + 1 :]) > 64)) / rate
        assert 0 <= onset - word.start_s < 0.04, (
            f"{word.word!r} shows at {word.start_s:.3f}s, is heard at {onset:.3f}s"
        )


def test_captions_show_words_as_written_keeping_only_the_clause_marks() -> None:
    out = speak('In 2024, sales rose 35% — "wow," said the well-known café owner.')

    expected = ["In", "2024,", "sales", "rose", "35%", "wow,", "said", "the", "well-known", "café", "owner."]
    assert [w.word for w in out.words] == expected
    assert_timings_fit(out)


def test_non_ascii_text_is_spoken_and_timed() -> None:
    out = speak("Crème brûlée au café, naïve Zoë — très bien, Ünal!", voice="fr")

    expected = ["Crème", "brûlée", "au", "café,", "naïve", "Zoë", "très", "bien,", "Ünal!"]
    assert [w.word for w in out.words] == expected
    assert_timings_fit(out)
    assert rms(samples(out)[0]) > 1000


def test_longer_text_gives_longer_audio() -> None:
    short = speak("Fresh coffee.")
    long = speak("Fresh coffee, roasted daily, delivered to your door every morning.")

    assert long.duration_s is not None and short.duration_s is not None
    assert long.duration_s > short.duration_s + 1.5


def test_the_same_spec_gives_the_same_bytes() -> None:
    first = speak(SENTENCE)
    speak("Something else in between, with another voice.", voice="en-gb")
    again = speak(SENTENCE)

    assert again.data == first.data
    assert again.words == first.words


def test_the_voice_changes_the_audio() -> None:
    american, british = speak(SENTENCE, voice="en-us"), speak(SENTENCE, voice="en-gb")

    assert american.data != british.data
    assert [w.word for w in british.words] == SENTENCE_WORDS
    assert speak(SENTENCE).data == american.data, "en-us is the default voice"


def test_a_voice_variant_is_accepted() -> None:
    assert speak(SENTENCE, voice="en-gb+f3").data != speak(SENTENCE, voice="en-gb").data


@pytest.mark.parametrize("voice", ["klingon-tlh", "en-us+nosuchvariant", "../../etc/passwd"])
def test_an_unknown_voice_is_refused_by_name(voice: str) -> None:
    with pytest.raises(ProviderError) as caught:
        speak(SENTENCE, voice=voice)

    assert caught.value.kind is ErrorKind.invalid_input
    assert voice in str(caught.value)


@pytest.mark.parametrize("text", ["", "   \n\t", "... !?"])
def test_text_with_nothing_to_say_is_refused(text: str) -> None:
    with pytest.raises(ProviderError, match="empty|nothing speakable") as caught:
        speak(text)

    assert caught.value.kind is ErrorKind.invalid_input


def test_concurrent_renders_match_sequential_ones() -> None:
    texts = [f"Story {n}: bold coffee for busy mornings, made fresh." for n in range(8)]
    sequential = [speak(text) for text in texts]

    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(speak, texts))

    assert [o.data for o in concurrent] == [o.data for o in sequential]
    assert [o.words for o in concurrent] == [o.words for o in sequential]


def test_it_runs_as_a_provider_job() -> None:
    speech = LocalSpeech()
    assert isinstance(speech, Generator)

    out = run_job(speech, spec(SENTENCE), sleep=lambda _: None)

    assert out.data == speak(SENTENCE).data
    assert out.cost_usd == 0.0
