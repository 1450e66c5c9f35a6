"""The review gate: a campaign that waits for a person before paying for video, answered from the Prefect API (as
the UI sends it) and from `cutroom review`, with news of it on a webhook."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import yaml

from cli.errors import UserError
from cli.review import decisions
from cutroom.brief import Review, parse_brief
from cutroom.plan import Story, StoryType
from cutroom.review import directed, review_form, sorted_answers
from tests.helpers import BIN, cutroom

BRIEF = {
    "campaign": "Review Check",
    "brand": {"name": "Kestrel", "palette": ["#14213D", "#FCA311", "#E5E5E5"]},
    "goal": "book a test ride",
    "audience": "commuters",
    "channels": ["tiktok"],  # one reel to cut
    "stories": 2,
    "quality_target": 60,
    "max_iterations": 1,
    "review": "before_video",
}


def test_a_review_form_has_a_decision_per_story_and_sorts_its_answers():
    form = review_form(
        "Review1", {"s1": "keyframe file:///a.png (score 71)", "s2": "…", "s3": "…", "s4": "…"}, ""
    )
    assert form.model_json_schema()["properties"]["s1"]["description"] == "keyframe file:///a.png (score 71)"
    answers = form.model_validate(
        {
            "s1": {"decision": "approve"},
            "s2": {"decision": "reject", "note": "warmer light"},
            "s3": {"decision": "drop", "note": "off brand"},
            "s4": {"decision": "reject"},  # no note: it would make the same keyframe, so it is asked again
        }
    )
    verdicts = sorted_answers(answers)
    assert verdicts.approved == ["s1"]
    assert verdicts.rejected == {"s2": "warmer light"}
    assert verdicts.dropped == {"s3": "off brand"}


def test_a_note_becomes_direction_in_the_keyframe_prompt():
    story = Story(
        id="s1", title="t", type=StoryType.social, channel="instagram", objective="o",
        copy={"headline": "h", "body": "b", "cta": "c"}, keyframe_prompt="a bike at dawn",
    )  # fmt: skip
    prompt = directed(story, ["warmer light", "closer on the rider."]).keyframe_prompt
    assert prompt == "a bike at dawn Direction: warmer light. closer on the rider."
    assert directed(story, []) is story


def test_terminal_decisions_are_checked_against_the_stories_asked():
    asked = {"s1": "", "s2": "", "s3": ""}
    assert decisions(asked, [], ["s2"], ["warmer"], ["s3"], approve_all=True) == {
        "s2": {"decision": "reject", "note": "warmer"},
        "s3": {"decision": "drop", "note": ""},
        "s1": {"decision": "approve", "note": ""},
    }
    with pytest.raises(UserError, match="s9"):
        decisions(asked, ["s9"], [], [], [])
    with pytest.raises(UserError, match="--note"):
        decisions(asked, [], ["s1"], [], [])


def test_the_brief_asks_for_no_review_unless_told():
    assert parse_brief({**BRIEF, "review": "none"}).review is Review.none
    assert parse_brief({k: v for k, v in BRIEF.items() if k != "review"}).review is Review.none
    with pytest.raises(ValueError, match="'review' is 'later'; use one of"):
        parse_brief({**BRIEF, "review": "later"})


class Webhook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):  # noqa: N802 (the name http.server calls)
        self.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def webhook():
    server = HTTPServer(("127.0.0.1", 0), Webhook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook", Webhook.received
    server.shutdown()


def paused_round(campaign_id: str, round_no: int, deadline_s: float = 240) -> tuple[str, list[str]]:
    """The campaign's run once it waits on review round `round_no`, and the stories that round asks about."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
    from prefect.input.actions import read_flow_run_input

    with get_client(sync_client=True) as client:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[campaign_id]))
            )
            for run in runs:
                details = run.state.state_details if run.state and run.state.is_paused() else None
                if (
                    details
                    and details.pause_key == f"review-keyframe-{round_no}"
                    and details.run_input_keyset
                ):
                    form = read_flow_run_input(details.run_input_keyset["schema"], flow_run_id=run.id)
                    if form:
                        return str(run.id), list(form["properties"])
            time.sleep(0.5)
    pytest.fail(f"{campaign_id} never waited on review round {round_no}")


@pytest.fixture(scope="module")
def reviewed_campaign(prefect_server, webhook, tmp_path_factory):
    """A campaign run in-process that pauses before video: round 1 answered through the Prefect API as the UI
    does (approve one story, reject the other with a note), rounds 2 and 3 by `cutroom review`."""
    from prefect.flow_runs import resume_flow_run

    work = tmp_path_factory.mktemp("review")
    (work / "brief.yaml").write_text(yaml.safe_dump(BRIEF))
    url, received = webhook
    env = {**os.environ, "CUTROOM_NOTIFY_URL": url, "COLUMNS": "200"}
    proc = subprocess.Popen(
        [str(BIN / "cutroom"), "run", str(work / "brief.yaml"), "--out", str(work / "out")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        run_id, first = paused_round("review-check", 1)
        kept, rejected = first
        resume_flow_run(
            run_id,
            run_input={
                kept: {"decision": "approve"},
                rejected: {"decision": "reject", "note": "warmer sunset light"},
            },
        )
        _, second = paused_round("review-check", 2)
        listed = cutroom("review", "review-check")
        rejected_again = cutroom(
            "review", "review-check", "--reject", rejected, "--note", "closer on the rider"
        )
        _, third = paused_round("review-check", 3)
        approved = cutroom("review", "review-check", "--approve", rejected)
        output, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    manifest = json.loads((work / "out" / "campaigns" / "review-check" / "manifest.json").read_text())
    return {
        "rc": proc.returncode, "output": output, "manifest": manifest, "kept": kept, "rejected": rejected,
        "asked": [first, second, third], "listed": listed, "terminal": [rejected_again, approved],
        "notices": received,
    }  # fmt: skip


def test_a_paused_campaign_approved_through_the_api_completes_with_clips(reviewed_campaign):
    assert reviewed_campaign["rc"] == 0, reviewed_campaign["output"]
    manifest = reviewed_campaign["manifest"]
    assert manifest["status"] == "complete"
    assert all(s["status"] == "complete" and s["clips"] for s in manifest["stories"])
    # a story decided is not asked again; one rejected is, until approved
    asked = reviewed_campaign["asked"]
    assert asked[1] == asked[2] == [reviewed_campaign["rejected"]]


def test_a_rejection_makes_a_new_keyframe_whose_prompt_carries_the_note(reviewed_campaign):
    stories = {s["story_id"]: s for s in reviewed_campaign["manifest"]["stories"]}
    remade = stories[reviewed_campaign["rejected"]]
    assert "warmer sunset light" in remade["keyframe"]["prompt"]
    assert "closer on the rider" in remade["keyframe"]["prompt"]
    assert "Direction" not in stories[reviewed_campaign["kept"]]["keyframe"]["prompt"]
    # the clips start from the approved keyframe
    assert remade["clips"][0]["params"]["inputs"][0]["sha256"] == remade["keyframe"]["sha256"]


def test_cutroom_review_lists_rejects_and_approves_from_a_terminal(reviewed_campaign):
    listed = reviewed_campaign["listed"]
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert reviewed_campaign["rejected"] in listed.stdout and "score" in listed.stdout
    for answered in reviewed_campaign["terminal"]:
        assert answered.returncode == 0, answered.stdout + answered.stderr
    unknown = cutroom("review", "review-check", "--approve", "s99")
    assert unknown.returncode == 2 and "no campaign 'review-check' is waiting" in unknown.stderr


def test_a_webhook_hears_each_review_waiting_and_the_end(reviewed_campaign):
    notices = reviewed_campaign["notices"]
    assert [n["event"] for n in notices] == ["review_waiting"] * 3 + ["campaign_ended"]
    assert {n["campaign_id"] for n in notices} == {"review-check"}
    assert "cutroom review review-check" in notices[0]["todo"]
    assert notices[-1]["status"] == "complete"


def test_a_webhook_hears_a_campaign_that_stops_on_an_error(prefect_server, webhook, tmp_path, monkeypatch):
    from flows.campaign import campaign

    url, received = webhook
    monkeypatch.setenv("CUTROOM_NOTIFY_URL", url)
    monkeypatch.chdir(tmp_path)
    brief = parse_brief(
        {
            **BRIEF,
            "campaign": "Broken Logo",
            "review": "none",
            "brand": {**BRIEF["brand"], "logo": "gone.png"},
        }
    )
    heard = len(received)
    with pytest.raises(ValueError, match="gone.png"):
        asyncio.run(campaign(brief, str(tmp_path / "out")))
    [notice] = received[heard:]
    assert (notice["event"], notice["campaign_id"], notice["status"]) == (
        "campaign_ended",
        "broken-logo",
        "failed",
    )
    assert (
        "BriefError" in notice["todo"]
        and "brand.logo" in notice["todo"]
        and "what it made is kept" in notice["todo"]
    )
