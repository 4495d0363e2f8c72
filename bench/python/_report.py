"""The one output format of every script here: one line of JSON on stdout."""

import json
import platform


def emit(bench, figures):
    print(json.dumps({
        "bench": bench,
        "runtime": "python " + platform.python_version(),
        "figures": figures,
    }))
