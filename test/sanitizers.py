# The environment of the tools in a sanitized build (-DMOE_ENABLE_SANITIZERS=ON,
# which lit.site.cfg.py records as config.moe_sanitizers): our code is built
# with ASan and UBSan, the Debian MLIR/LLVM libraries are not. Tests that
# must know say `REQUIRES: sanitizers` or `UNSUPPORTED: sanitizers`.

import os


def _options(defaults, variable):
    # What the caller exports comes last: a later option overrides an
    # earlier one, so a developer can still change any of these.
    exported = os.environ.get(variable, "")
    return ":".join(defaults + ([exported] if exported else []))


def use_sanitizers(config):
    if not config.moe_sanitizers:
        return
    config.available_features.add("sanitizers")
    # A report must kill the tool with a signal, not exit with a status:
    # `not tool ... | FileCheck` accepts any failing status, so an error test
    # would pass over a report (a leak at exit, say) made after the expected
    # diagnostic; `not` without --crash fails on a signal.
    config.environment["ASAN_OPTIONS"] = _options(
        ["abort_on_error=1"], "ASAN_OPTIONS")
    config.environment["UBSAN_OPTIONS"] = _options(
        ["abort_on_error=1", "print_stacktrace=1"], "UBSAN_OPTIONS")
    # Reports name functions and lines only with a symbolizer.
    symbolizer = os.path.join(config.llvm_tools_dir, "llvm-symbolizer")
    if os.path.exists(symbolizer):
        config.environment["ASAN_SYMBOLIZER_PATH"] = symbolizer
