"""One contract every vendor meets, through its real adapter (and SDK) against its simulator over loopback.

A vendor gets these tests by being declared: every declared vendor with a simulator mount, for every capability
its declaration gives an adapter, is a row. What is checked:
- submit/poll/fetch makes media of the kind and shape asked, for the card's price, in exactly one paid job;
- the card refuses what the model cannot make (options, inputs, durations, aspects, models) with no request;
- each fault kind becomes the right error kind and retry decision (the fault matrix);
- under 429s, 5xx, dropped connections and timeouts on a fifth of requests, retried as a task retries, the
  vendor accepts exactly as many jobs as assets were made: no create is paid twice;
- a refused key is `auth`; a job id of the wrong shape never reaches a URL.
The adapter side of a cell knows nothing of the simulator: only what a user would see.
"""

from __future__ import annotations

import io
import wave
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from PIL import Image

from cutroom.assets import AssetKind, AssetSpec, InputRef, Style
from cutroom.capabilities import Capability
from cutroom.channels import SIZES, Aspect
from cutroom.storage import path_of
from providers import declarations, registry
from providers.cards import ModelCard
from providers.declarations import Vendor
from providers.errors import ErrorKind, ProviderError
from providers.polling import run_job, submit_job, wait_for
from providers.protocol import JobRef, Output
from tests.simulator_fixture import SimulatorHandle
from tests.vendor_helpers import on_simulator

#: The simulator runs jobs this much faster than the vendors.
SCALE = 0.01
#: What a generator capability's output is.
MEDIA = {
    Capability.image: "image/",
    Capability.video: "video/",
    Capability.speech: "audio/",
    Capability.avatar: "video/",
    Capability.template: "video/",
}
#: Vendors whose simulator cannot say that an output (rather than an input) was refused, and why.
NO_OUTPUT_MODERATION = {
    "luma": "Luma reports one moderation reason, 'Advanced moderation failed', about inputs (luma.md)",
}
#: Vendors that refuse nothing for its content, so neither moderation fault has an answer of theirs to check.
NO_MODERATION = {
    "elevenlabs": "ElevenLabs documents no content refusal for speech (elevenlabs.md); none is invented",
}


@dataclass(frozen=True)
class Row:
    vendor: Vendor
    capability: Capability

    def __str__(self) -> str:
        return f"{self.vendor.name}-{self.capability.value}"

    @property
    def card(self) -> ModelCard:
        return self.vendor.card(self.vendor.default_model(self.capability), self.capability)


def rows() -> list[Row]:
    return [
        Row(vendor, capability)
        for vendor in declarations.vendors().values()
        if vendor.simulator is not None and vendor.billable
        for capability in vendor.adapters
        if capability in MEDIA
    ]


ROWS = rows()


def adapter(row: Row, sim: SimulatorHandle, **options: Any) -> Any:
    """The row's real adapter, pointed at the simulator by injection."""
    cls = registry.adapter_class(row.capability, row.vendor.name)
    return on_simulator(cls, sim, scale=SCALE, **{"timeout": 5.0, **options})


@pytest.fixture(scope="module")
def keyframe(tmp_path_factory: pytest.TempPathFactory) -> InputRef:
    """A real image on disk that also has a public link: the start frame a clip is asked to move from."""
    path = tmp_path_factory.mktemp("contract") / "keyframe.png"
    Image.new("RGB", (640, 360), (200, 120, 40)).save(path)
    return InputRef(
        role="keyframe", uri=path.as_uri(), url="https://cdn.example.com/keyframe.png", sha256="0" * 64
    )


def sample(row: Row, keyframe: InputRef, **changes: Any) -> AssetSpec:
    """The plainest request the row's default model can make: an aspect it offers, a length it takes, the
    inputs it needs."""
    card = row.card
    aspect = next((a for a in (Aspect.landscape, Aspect.square, Aspect.vertical) if a.value in card.aspects),
                  Aspect.landscape if not card.aspects else None)  # fmt: skip
    fields: dict[str, Any] = {
        "kind": AssetKind(row.capability.value),
        "provider": row.vendor.name,
        "model": card.model,
        "prompt": "a red kite over a quiet beach at dawn",
        "style": Style(brand="Contract", palette=("#1F2937", "#F59E0B")),
    }
    if row.capability in (Capability.image, Capability.video) and aspect is not None:
        fields |= {"aspect": aspect, "width": SIZES[aspect][0], "height": SIZES[aspect][1]}
    if row.capability is Capability.video:
        fields |= {"duration_s": card.durations_s[0] if card.durations_s else 5.0, "fps": 24}
    if card.needs or (row.capability is Capability.video and "keyframe" in card.inputs):
        fields["inputs"] = (keyframe,)
    if row.capability is Capability.avatar:
        fields |= presenter(card, keyframe)
    if row.capability is Capability.template:
        fields |= template_render(keyframe)
    return AssetSpec(**{**fields, **changes})


#: A 16:9 template every simulated template project holds (a vendor renders only templates its project has).
TEMPLATE_ID = "5b1c0d2e-3f4a-4b5c-8d6e-7f8091a2b3c4"


def template_render(keyframe: InputRef) -> dict[str, Any]:
    """A template request's fields: the keyframe (by its link) as the template's image, the copy, a video out."""
    return {"inputs": (keyframe.model_copy(update={"role": "image"}),), "aspect": Aspect.landscape,
            "width": SIZES[Aspect.landscape][0], "height": SIZES[Aspect.landscape][1],
            "options": {"template_id": TEMPLATE_ID, "body": "Kites for every wind", "cta": "Fly today",
                        "output_format": "mp4"}}  # fmt: skip


#: The length of the voice an avatar sample lip-syncs to.
VOICE_S = 2.0


def presenter(card: ModelCard, keyframe: InputRef) -> dict[str, Any]:
    """An avatar request's fields: a real voice (a wav written beside the keyframe), the keyframe as the portrait
    when the model takes one, a talking photo when it names one, and the voice's length, as a flow knows it."""
    voice = path_of(keyframe.uri).with_name("voice.wav")
    if not voice.exists():
        with wave.open(str(voice), "wb") as out:  # 16 kHz mono 16-bit silence: real audio, a few bytes
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(16000)
            out.writeframes(bytes(2 * int(16000 * VOICE_S)))
    inputs = [InputRef(role="audio", uri=voice.as_uri(), sha256="0" * 64)]
    if "portrait" in card.inputs:
        inputs.append(keyframe.model_copy(update={"role": "portrait", "url": None}))
    fields: dict[str, Any] = {"inputs": tuple(inputs), "duration_s": VOICE_S, "aspect": Aspect.landscape,
                              "width": SIZES[Aspect.landscape][0], "height": SIZES[Aspect.landscape][1]}  # fmt: skip
    if "talking_photo_id" in card.options:
        fields["options"] = {"talking_photo_id": "Contract_Presenter_20240101"}
    return fields


def vendor_requests(sim: SimulatorHandle, row: Row) -> list[dict[str, Any]]:
    return [r for r in sim.requests() if r["vendor"] == row.vendor.name]


def accepted_jobs(sim: SimulatorHandle, row: Row) -> int:
    return sum(1 for job in sim.jobs() if job["vendor"] == row.vendor.name)


def outcome(work: Callable[[], Any]) -> Any:
    """What a call ended in: its result, or the exception it raised."""
    try:
        return work()
    except Exception as exc:  # the cell decides whether this exception is the right one
        return exc


@pytest.fixture
def sim(simulator: SimulatorHandle) -> SimulatorHandle:
    simulator.reset(latency_scale=SCALE, latency_jitter=0)
    return simulator


# -- making ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("row", ROWS, ids=str)
def test_submit_poll_fetch_makes_the_media_asked_for_in_one_paid_job(row: Row, sim, keyframe):
    spec = sample(row, keyframe)
    made = run_job(adapter(row, sim), spec)

    assert made.mime.startswith(MEDIA[row.capability]), made.mime
    assert made.cost_usd == pytest.approx(row.card.price_of(spec))
    if spec.aspect is not None and made.width and made.height:
        asked = SIZES[spec.aspect][0] / SIZES[spec.aspect][1]
        assert made.width / made.height == pytest.approx(asked, rel=0.08), (made.width, made.height)
    if row.capability is Capability.image:
        Image.open(io.BytesIO(made.data)).load()  # a whole, decodable image
    if row.capability is Capability.video:
        assert made.duration_s and made.duration_s == pytest.approx(spec.duration_s, abs=0.6)
    assert accepted_jobs(sim, row) == 1


# -- checks before paying ------------------------------------------------------------------------------------------


def impossible(row: Row, keyframe: InputRef) -> dict[str, AssetSpec]:
    """Requests the row's card says its model cannot make, by what is wrong with them."""
    card = row.card
    cases = {
        "an unknown option": sample(row, keyframe, options={"no_such_option": 1}),
        "an unknown model": sample(row, keyframe, model="no-such-model-9"),
        "an input it does not take": sample(
            row, keyframe, inputs=(keyframe.model_copy(update={"role": "mask_x"}),)
        ),
        "an operation it does not do": sample(
            row,
            keyframe,
            operation="enhance_frame_rate",
            inputs=(keyframe.model_copy(update={"role": "source"}),),
        ),
    }
    if "enhance_frame_rate" in card.operations:
        del cases["an operation it does not do"]
    if card.durations_s:
        cases["a length it does not make"] = sample(row, keyframe, duration_s=max(card.durations_s) + 0.5)
    refused = [a for a in Aspect if card.aspects and a.value not in card.aspects]
    if refused:
        cases["an aspect it does not make"] = sample(row, keyframe, aspect=refused[0])
    choice = next((name for name, o in card.options.items() if o.choices), None)
    if choice:
        cases[f"a {choice} it does not offer"] = sample(row, keyframe, options={choice: "not-a-choice"})
    retired = [c for c in row.vendor.cards(row.capability) if c.retired]
    if retired:
        cases["a retired model"] = sample(row, keyframe, model=retired[0].model)
    return cases


@pytest.mark.parametrize("row", ROWS, ids=str)
def test_the_card_refuses_what_the_model_cannot_make_before_any_request(row: Row, sim, keyframe):
    generator = adapter(row, sim)
    for case, spec in impossible(row, keyframe).items():
        ended = outcome(lambda spec=spec: generator.submit(spec))
        assert isinstance(ended, ProviderError), f"{case}: {ended!r}"
        assert ended.kind is ErrorKind.invalid_input, f"{case}: {ended}"
    assert vendor_requests(sim, row) == []


@pytest.mark.parametrize("row", ROWS, ids=str)
def test_the_vendor_refuses_the_lengths_the_card_refuses(row: Row, sim, keyframe):
    """The card agrees with the vendor: a length the card refuses, sent anyway, the vendor refuses too."""
    generator, card = adapter(row, sim), row.card
    if not card.durations_s:
        pytest.skip(f"{row.card.model} takes any length")
    spec = sample(row, keyframe, duration_s=max(card.durations_s) + 1)
    ended = outcome(lambda: sent_anyway(generator, spec, card))
    assert isinstance(ended, ProviderError) and ended.kind is ErrorKind.invalid_input, repr(ended)


def sent_anyway(generator: Any, spec: AssetSpec, card: ModelCard) -> Any:
    """The paid call with the card's check left out."""
    with generator.calling("create"):
        return generator.generate(spec, card) if generator.sync else generator.create(spec, card)


# -- the fault matrix ----------------------------------------------------------------------------------------------

#: What each transport fault on the paid call must become, and whether it is retried as it is.
TRANSPORT = {
    "429": (ErrorKind.rate_limited, True),
    "5xx": (ErrorKind.generation_failed, True),
    "timeout": (ErrorKind.generation_failed, True),
    "reset": (ErrorKind.generation_failed, True),
    "malformed": (ErrorKind.generation_failed, True),
}
#: What each job fault must end in.
JOB = {
    "failed": (ErrorKind.generation_failed, True),
    "moderation": (ErrorKind.moderation_input, False),
    "moderation_output": (ErrorKind.moderation_output, False),
}


@pytest.mark.parametrize("fault", list(TRANSPORT))
@pytest.mark.parametrize("row", ROWS, ids=str)
def test_a_transport_fault_on_the_paid_call_is_the_right_kind(row: Row, fault: str, sim, keyframe):
    check_transport_fault(row, fault, sim, keyframe, adapter(row, sim, timeout=1.0))


def check_transport_fault(
    row: Row, fault: str, sim: SimulatorHandle, keyframe: InputRef, generator: Any
) -> None:
    sim.configure(fault_rate=1.0, faults=[fault], timeout_s=2.0, retry_after_s=0.25)
    ended = outcome(lambda: generator.submit(sample(row, keyframe)))
    kind, transient = TRANSPORT[fault]
    assert isinstance(ended, ProviderError), f"{fault} left as {ended!r}"
    assert (ended.kind, ended.kind.transient) == (kind, transient), str(ended)
    if fault == "429" and any(r["fault"] == "429" for r in vendor_requests(sim, row)):
        assert ended.retry_after is None or ended.retry_after == pytest.approx(0.25)
    assert accepted_jobs(sim, row) == 0


@pytest.mark.parametrize("fault", list(JOB))
@pytest.mark.parametrize("row", ROWS, ids=str)
def test_a_job_that_ends_badly_is_the_right_kind(row: Row, fault: str, sim, keyframe):
    if fault == "moderation_output" and row.vendor.name in NO_OUTPUT_MODERATION:
        pytest.skip(NO_OUTPUT_MODERATION[row.vendor.name])
    if fault.startswith("moderation") and row.vendor.name in NO_MODERATION:
        pytest.skip(NO_MODERATION[row.vendor.name])
    sim.configure(fault_rate=1.0, faults=[fault])
    ended = outcome(lambda: run_job(adapter(row, sim), sample(row, keyframe)))
    kind, transient = JOB[fault]
    assert isinstance(ended, ProviderError), f"{fault} left as {ended!r}"
    assert (ended.kind, ended.kind.transient) == (kind, transient), str(ended)


@pytest.mark.parametrize("row", ROWS, ids=str)
def test_an_expired_output_link_is_not_found_and_never_retried_blindly(row: Row, sim, keyframe):
    sim.configure(fault_rate=1.0, faults=["expired"])
    ended = outcome(lambda: run_job(adapter(row, sim), sample(row, keyframe)))
    downloads = [r for r in vendor_requests(sim, row) if r["method"] == "GET" and r["status"] in (401, 403, 404, 410)
                 and "/_media/" in r["path"]]  # fmt: skip
    if not downloads:  # the vendor answers with the media itself: there is no link to expire
        assert isinstance(ended, Output), repr(ended)
        return
    assert isinstance(ended, ProviderError) and ended.kind is ErrorKind.not_found, repr(ended)
    assert len(downloads) == 1  # a gone link is not fetched again and again


# -- no create paid twice ------------------------------------------------------------------------------------------


def made_as_a_task_makes_it(generator: Any, spec: AssetSpec, attempts: int = 8) -> Output:
    """Submit (a failed submit is tried again, as the generate task's retries do), then wait for the job: the
    job itself is never submitted again once the vendor has it."""
    for attempt in range(attempts):
        try:
            job = submit_job(generator, spec, sleep=lambda s: None)
            break
        except ProviderError as exc:
            if not exc.kind.transient or attempt == attempts - 1:
                raise
    return wait_for(generator, job)


@pytest.mark.parametrize("row", ROWS, ids=str)
def test_under_faults_every_accepted_job_is_made_once(row: Row, sim, keyframe):
    sim.configure(
        fault_rate=0.2, faults=["429", "5xx", "reset", "timeout"], timeout_s=0.2, retry_after_s=0.05, seed=28
    )  # fmt: skip  (seed 28's first draw faults the first request, however they race)
    generator = adapter(row, sim)
    with ThreadPoolExecutor(4) as stories:  # at once, as a campaign's stories ask
        made = list(
            stories.map(lambda n: made_as_a_task_makes_it(generator, sample(row, keyframe, seed=n)), range(4))
        )
    assert len(made) == 4 and all(m.data for m in made)
    assert accepted_jobs(sim, row) == 4
    assert any(r["fault"] for r in vendor_requests(sim, row)), "no fault was met: the cell proves nothing"


# -- keys and ids ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("row", ROWS, ids=str)
def test_a_refused_key_is_an_auth_error(row: Row, sim, keyframe):
    ended = outcome(lambda: adapter(row, sim, api_key="not-a-real-key").submit(sample(row, keyframe)))
    assert isinstance(ended, ProviderError) and ended.kind is ErrorKind.auth, repr(ended)
    assert accepted_jobs(sim, row) == 0


@pytest.mark.parametrize("row", [r for r in ROWS if not registry.adapter_class(r.capability, r.vendor.name).sync],
                         ids=str)  # fmt: skip
def test_a_job_id_of_the_wrong_shape_never_reaches_a_url(row: Row, sim):
    generator = adapter(row, sim)
    for job_id in ("../../x", "a/b", "x?y=1", "", "x" * 300):
        job = JobRef(provider=row.vendor.name, job_id=job_id, spec_key="0")
        ended = outcome(lambda job=job: generator.poll(job))
        assert isinstance(ended, ProviderError) and ended.kind is ErrorKind.invalid_input, repr(ended)
    assert vendor_requests(sim, row) == []


# -- the suite itself ---------------------------------------------------------------------------------------------


def test_the_suite_fails_an_adapter_whose_error_mapping_is_removed(sim, keyframe):
    """A contract that cannot fail proves nothing: without its error mapping, an adapter fails the matrix."""
    row = next(r for r in ROWS if r.vendor.name == "runway" and r.capability is Capability.image)
    cls = registry.adapter_class(row.capability, row.vendor.name)
    unmapped = type("Unmapped", (cls,), {"map_error": lambda self, exc, what: None})
    generator = unmapped(base_url=sim.url + row.vendor.simulator.prefix, api_key=row.vendor.simulator.key,
                         time_scale=SCALE, timeout=1.0)  # fmt: skip
    with pytest.raises(AssertionError, match="429 left as"):
        check_transport_fault(row, "429", sim, keyframe, generator)


def test_every_vendor_with_a_simulator_is_in_the_contract():
    """Every media vendor here; the language models have their own contract (test_language_contract.py)."""
    names = {row.vendor.name for row in ROWS}
    mounted = {
        v.name
        for v in declarations.vendors().values()
        if v.simulator is not None and v.billable and any(c in MEDIA for c in v.adapters)
    }
    assert names == mounted and {"luma", "runway"} <= names
