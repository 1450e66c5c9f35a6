"""`python -m bench.studio SCRIPT OUT`: the script studio as `cutroom script SCRIPT --out OUT` runs it, voiced by
ElevenLabs and presented by HeyGen, for P9.

`cutroom script` takes no provider preferences (its lineup is the offline one; only a `Talking photo:` line names
its avatar vendor), so ElevenLabs could not speak a script run from the command line. This runs the command's own
path — Prefect configured as a CLI run configures it, the flow run to its end by cli.stopping — with Eleven v3 (one
request for a scene of several voices) and HeyGen named, as tests/test_studio_vendors.py names them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cli import stopping
from cli.prefect_setup import configured_prefect

PROVIDERS = {"speech": ["elevenlabs:eleven_v3"], "avatar": ["heygen"]}
#: Premade ElevenLabs voices for the bench script's two speakers.
VOICES = {"VO": "george", "Maya": "rachel"}


def main(script: Path, out: Path) -> int:
    """Make the script's scenes and their stitched cut; 0 when every scene is complete."""
    out.mkdir(parents=True, exist_ok=True)
    with configured_prefect(str(out), verbose=False):
        from flows.script_video import script_video

        made = stopping.run_flow(
            lambda: script_video(
                str(script),
                out=str(out),
                campaign_id=script.stem,
                voices=VOICES,
                providers=PROVIDERS,
                folder=str(script.parent),
            )
        )
    failed = [f"{s.id} at {s.step}: {s.error}" for s in made.scenes if s.status != "complete"]
    print(f"{made.campaign_id}: {made.status}, {len(made.scenes)} scenes", *failed, sep="\n")
    return 0 if made.status == "complete" else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.studio", description=__doc__)
    parser.add_argument("script", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    sys.exit(main(args.script.resolve(), args.out.resolve()))
