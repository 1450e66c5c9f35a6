"""The ElevenLabs adapter against simulator/elevenlabs.py over loopback: what the contract suite does not check — word
timings that follow the audio, a dialogue as one recording, ElevenLabs' own limits and refusals, and `cutroom
generate speech` on it."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from cutroom.assets import AssetKind, AssetSpec
from providers.elevenlabs import VOICES, ElevenLabsSpeech
from providers.errors import ErrorKind
from providers.local.speech import caption_words
from providers.polling import run_job
from tests.helpers import cutroom
from tests.vendor_helpers import on_simulator, refused

SCALE = 0.01
LINE = "Paddle out at dawn, when the bay is glass."


@pytest.fixture
def sim(simulator: Any) -> Any:
    simulator.reset(latency_scale=SCALE, latency_jitter=0)
    return simulator


def adapter(sim: Any, model: str | None = None) -> ElevenLabsSpeech:
    return on_simulator(ElevenLabsSpeech, sim, model, scale=SCALE, timeout=10.0)


def speech(prompt: str = LINE, model: str = "eleven_multilingual_v2", **changes: Any) -> AssetSpec:
    return AssetSpec(kind=AssetKind.speech, provider="elevenlabs", model=model, prompt=prompt, **changes)


def sent(sim: Any) -> list[dict[str, Any]]:
    return [r for r in sim.requests() if r["vendor"] == "elevenlabs"]


def test_word_timings_are_the_texts_words_and_follow_the_audio(sim):
    made = run_job(adapter(sim), speech(voice="Rachel"))

    assert made.mime == "audio/mpeg" and made.duration_s
    assert [w.word for w in made.words] == [LINE[a:b] for a, b in caption_words(LINE)]
    starts = [w.start_s for w in made.words]
    assert starts == sorted(starts) and all(w.end_s > w.start_s for w in made.words)
    # The last word ends with the speech: at the audio's end, give or take MP3 framing and a breath.
    assert made.duration_s - 0.4 < made.words[-1].end_s <= made.duration_s + 0.05
    (request,) = sent(sim)
    assert request["path"].startswith(f"/elevenlabs/v1/text-to-speech/{VOICES['rachel']}/with-timestamps")


def test_a_dialogue_is_one_recording_of_every_line_in_its_voices(sim):
    lines = [
        {"voice": "George", "text": "Ready to get wet?"},
        {"voice": "rachel", "text": "Always. Let's go!"},
        {"voice": VOICES["george"], "text": "Then grab a paddle."},
    ]
    spec = speech(
        "\n".join(line["text"] for line in lines), "eleven_v3", options={"dialogue": json.dumps(lines)}
    )
    made = run_job(adapter(sim, "eleven_v3"), spec)

    (request,) = sent(sim)
    assert request["path"].startswith("/elevenlabs/v1/text-to-dialogue/with-timestamps")
    assert [i["voice_id"] for i in request["body"]["inputs"]] == [
        VOICES["george"],
        VOICES["rachel"],
        VOICES["george"],
    ]
    # Every line's words, in order: each line is split on its own, so the joined "wet?Always." is two words.
    spoken = [w.word for w in made.words]
    assert spoken == ["Ready", "to", "get", "wet?", "Always.", "Let's", "go!", "Then", "grab", "a", "paddle."]
    assert made.words[4].start_s > made.words[3].end_s
    assert made.words[-1].end_s <= made.duration_s + 0.05
    assert sum(1 for job in sim.jobs() if job["vendor"] == "elevenlabs") == 1


def test_what_elevenlabs_would_refuse_is_refused_before_any_request(sim):
    generator = adapter(sim)
    too_long = refused(lambda: generator.submit(speech("a" * 10_001)), ErrorKind.invalid_input)
    assert "10,000 characters" in str(too_long)
    refused(lambda: generator.submit(speech(voice="en-us")), ErrorKind.invalid_input)
    refused(
        lambda: generator.submit(speech(options={"dialogue": '[{"voice": "George", "text": "Hi"}]'})),
        ErrorKind.invalid_input,
    )  # dialogue is Eleven v3's
    v3 = adapter(sim, "eleven_v3")
    refused(
        lambda: v3.submit(speech(model="eleven_v3", options={"dialogue": "not json"})),
        ErrorKind.invalid_input,
    )
    refused(lambda: v3.submit(speech(model="eleven_v3", options={"stability": 0.3})), ErrorKind.invalid_input)
    assert sent(sim) == []


def test_an_account_out_of_characters_is_insufficient_credits_not_a_refused_key(sim):
    quota = f"{sim.url}/elevenlabs/_sim/quota"
    httpx.post(quota, json={"exhausted": True}, timeout=5).raise_for_status()
    try:
        error = refused(lambda: adapter(sim).submit(speech()), ErrorKind.insufficient_credits)
    finally:
        httpx.post(quota, json={"exhausted": False}, timeout=5).raise_for_status()
    assert "quota_exceeded" in str(error)


def test_cutroom_generate_speech_on_elevenlabs(prefect_server, sim, tmp_path):
    target = tmp_path / "voice.mp3"
    made = cutroom(
        "generate", "speech", "--provider", "elevenlabs", "--prompt", LINE, "--voice", "George", "--out", str(target),
        env={"CUTROOM_OUT": str(tmp_path / "work"), "CUTROOM_SIMULATOR_URL": sim.url},
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "elevenlabs/eleven_multilingual_v2" in made.stdout
    assert target.read_bytes()[:3] == b"ID3"
    assert sum(1 for job in sim.jobs() if job["vendor"] == "elevenlabs") == 1
