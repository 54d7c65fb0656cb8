# -*- Python -*-
# Runs the GoogleTest unit tests as part of the lit suite.

import os
import sys

import lit.formats

config.name = "MOE-Unit"
config.suffixes = []
config.test_exec_root = os.path.join(config.moe_obj_root, "test", "unittests")
config.test_source_root = config.test_exec_root
config.test_format = lit.formats.GoogleTest(".", "Tests")

sys.path.insert(0, os.path.join(config.moe_src_root, "test"))
from sanitizers import use_sanitizers  # noqa: E402

# A sanitized build: the sanitizers' options and symbolizer.
use_sanitizers(config)
