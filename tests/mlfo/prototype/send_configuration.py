"""Sends one cohort configuration of the prototype's intent/sendintent.py to
an edge MLFO the way that script does: one multipart POST /receive per
cohort, the intent file in field `file` and the form fields ipstart (an int,
from 10 on), cohortsize (an int), sameserver, avgalgo, fracfit, minfit,
minav and numround with the values of the configuration as written.

Usage: send_configuration.py MLFO_URL CONFIGURATIONS_JSON NAME
Prints the status and text of each reply, one line per cohort.
"""

import json
import os
import sys

import requests


def main() -> None:
    url, path, name = sys.argv[1], sys.argv[2], sys.argv[3]
    with open(path) as f:
        c = json.load(f)["configurations"][name]
    folder = os.path.dirname(os.path.abspath(path))
    ipstart = 10
    for i, cohort in enumerate(c["cohortdistr"]):
        payload = {
            "ipstart": ipstart,
            "cohortsize": cohort,
            "sameserver": c["sameserverdist"][i],
            "avgalgo": c["avgalgodist"][i],
            "fracfit": c["fracfitdist"][i],
            "minfit": c["minfitdist"][i],
            "minav": c["minavdist"][i],
            "numround": c["numrounddist"][i],
        }
        with open(os.path.join(folder, c["intentdist"][i]), "rb") as intent:
            reply = requests.post(
                url + "/receive", files={"file": intent}, data=payload, timeout=60
            )
        print(reply.status_code, reply.text.strip(), flush=True)
        ipstart += cohort


if __name__ == "__main__":
    main()
