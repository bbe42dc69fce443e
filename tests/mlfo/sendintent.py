"""Posts intents to an edge MLFO exactly as the prototype's sendintent.py did:
one multipart POST /receive per cohort, the intent YAML in field `file` and
the form fields ipstart, cohortsize, sameserver, avgalgo, fracfit, minfit,
minav, numround; host ranges start at .10 and follow each other.

Usage: sendintent.py MLFO_URL COHORTS_JSON
COHORTS_JSON: [{"size": 6, "file": "intent.yaml", "sameserver": "no", ...}, ...]
Prints the MLFO's reply to each post, one per line.
"""

import json
import sys

import requests


def main() -> None:
    url, cohorts = sys.argv[1], json.loads(sys.argv[2])
    ipstart = 10
    for c in cohorts:
        form = {
            "ipstart": str(ipstart),
            "cohortsize": str(c["size"]),
            "sameserver": c.get("sameserver", "no"),
            "avgalgo": c.get("avgalgo", "FedAvg"),
            "fracfit": c.get("fracfit", "0.5"),
            "minfit": c.get("minfit", "1"),
            "minav": c.get("minav", "1"),
            "numround": c.get("numround", "3"),
        }
        with open(c["file"], "rb") as f:
            reply = requests.post(url + "/receive", files={"file": f}, data=form, timeout=30)
        print(reply.status_code, reply.text.strip(), flush=True)
        ipstart += c["size"]


if __name__ == "__main__":
    main()
