"""Copies a Hugging Face model directory with edited config.json fields.

    python -m moe_testing.edit_config SRC DST KEY=JSON [KEY=JSON ...]

The weights and other files of SRC are hard-linked into the new directory
DST (they are never written to); config.json is rewritten with every KEY
set to the parsed JSON value, e.g.

    rope_parameters='{"rope_type": "yarn", "factor": 4.0, "rope_theta": 10000.0,
                      "original_max_position_embeddings": 16}'
    max_position_embeddings=16
"""

import argparse
import json
import os
import shutil
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("dest")
    parser.add_argument("fields", nargs="+", metavar="KEY=JSON")
    args = parser.parse_args(argv)
    os.makedirs(args.dest)
    for name in os.listdir(args.source):
        if name == "config.json":
            continue
        source = os.path.join(args.source, name)
        target = os.path.join(args.dest, name)
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)
    with open(os.path.join(args.source, "config.json")) as f:
        config = json.load(f)
    for field in args.fields:
        key, _, value = field.partition("=")
        config[key] = json.loads(value)
    with open(os.path.join(args.dest, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
