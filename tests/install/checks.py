# SPDX-License-Identifier: Apache-2.0
"""What the install tests share: checks that record their failures, the exit status, and a
`meson install` into a scratch root with where each kind of file went."""
import json
import os
import subprocess

failures = []


def check(condition, what):
    """Prints `ok: what` or `FAIL: what`; a failure is remembered for exit_status()."""
    print(("ok: " if condition else "FAIL: ") + what)
    if not condition:
        failures.append(what)
    return condition


def exit_status():
    """0 when every check passed, else 1 (and how many failed)."""
    if failures:
        print(f"{len(failures)} checks failed")
        return 1
    return 0


def build_options(build_dir):
    """The build's meson options, name -> value."""
    options = json.loads(subprocess.run(["meson", "introspect", "--buildoptions", build_dir], check=True,
                                        capture_output=True, text=True).stdout)
    return {o["name"]: o["value"] for o in options}


def meson_install(build_dir, root):
    """Installs the build below `root` (DESTDIR) and returns where each kind of file went."""
    subprocess.run(["meson", "install", "-C", build_dir, "--no-rebuild", "--quiet", "--destdir", root],
                   check=True, stdout=subprocess.DEVNULL)
    value = build_options(build_dir)
    prefix = root + value["prefix"]
    return {name: os.path.join(prefix, value[name])
            for name in ("bindir", "libexecdir", "libdir", "includedir", "datadir", "mandir")} | {"prefix": prefix}
