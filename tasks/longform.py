"""Long-form narration steps after the clauses are spoken: stitch them into a master, and measure its pauses.

Speaking a clause is no step of its own: it is `generate` on a speech spec, so a vendor voice gets the ledger,
the journal and the content-addressed store that every paid asset has.
"""

from __future__ import annotations

from prefect import task

from cutroom.longform import LongformAudio, Master, Script
from cutroom.manifest import CampaignStatus
from cutroom.mastering import mp3_bytes, normalised, read_pcm, wav_bytes
from cutroom.pauses import Clause, check_pauses, stitch
from cutroom.storage import campaign_prefix, open_storage
from tasks.policy import in_thread, key_on


def longform_key(campaign_id: str, name: str) -> str:
    return f"{campaign_prefix(campaign_id)}/longform/{name}"


def _stitch(script: Script, clips: list[str], out: str, campaign_id: str) -> Master:
    storage = open_storage(out)
    paths = [storage.local_path(storage.key_of(uri)) for uri in clips]
    rate = read_pcm(paths[0])[1]  # the voice's own rate: no resampling for a single-voice script
    spoken = iter(paths)
    clauses = [
        Clause(scene.title, segment.text, read_pcm(next(spoken), rate)[0], segment.pause_after_s)
        for scene in script.scenes
        for segment in scene.segments
    ]
    track, sheet = stitch(clauses, rate, script.lead_in_s)
    track, gain_db = normalised(track, rate)

    def put(name: str, data: bytes, mime: str) -> str:
        return storage.put_bytes(longform_key(campaign_id, name), data, mime)

    scenes, start, done = [], 0, 0
    for number, scene in enumerate(script.scenes, start=1):
        done += len(scene.segments)
        last = sheet.segments[done - 1]
        end = round((last.end_s + last.pause_after_s) * rate)
        scenes.append(put(f"scenes/{scene.slug(number)}.wav", wav_bytes(track[start:end], rate), "audio/wav"))
        start = end
    return Master(
        uri=put("master.wav", wav_bytes(track, rate), "audio/wav"),
        mp3=put("master.mp3", mp3_bytes(track, rate), "audio/mpeg"),
        scenes=scenes,
        gain_db=gain_db,
        sheet=sheet,
    )


@task(
    name="stitch-master",
    task_run_name="stitch-{campaign_id}",
    # The clips' URIs are content addresses: the same words, voice and pauses make the same master.
    cache_key_fn=key_on("script", "clips", "out", "campaign_id"),
    persist_result=True,
)
async def stitch_master(script: Script, clips: list[str], out: str, campaign_id: str) -> Master:
    """Trim each spoken clause to its sound, lay it down with its exact pause, level the whole by one gain, and
    store the master (WAV, MP3) and a WAV per scene under campaigns/{id}/longform/."""
    return await in_thread(_stitch, script, clips, out, campaign_id)


def _validate(master: Master, out: str, campaign_id: str) -> LongformAudio:
    storage = open_storage(out)
    pcm, rate = read_pcm(storage.local_path(storage.key_of(master.uri)))
    report = check_pauses(master.sheet, pcm, rate)
    key = longform_key(campaign_id, "manifest.json")
    made = LongformAudio(
        campaign_id=campaign_id,
        status=CampaignStatus.complete if report.ok else CampaignStatus.partial,
        master=master,
        report=report,
        manifest=storage.uri(key),
    )
    # The same master measured the same way is the same bytes: a rerun leaves the file as it was.
    storage.put_bytes(key, made.model_dump_json(indent=2, by_alias=True).encode(), "application/json")
    return made


@task(name="validate-pauses", task_run_name="validate-{campaign_id}")
async def validate_pauses(master: Master, out: str, campaign_id: str) -> LongformAudio:
    """Measure every pause in the stored master from its samples, and keep the master, where each clause sits in
    it and the measurements as longform/manifest.json."""
    return await in_thread(_validate, master, out, campaign_id)
