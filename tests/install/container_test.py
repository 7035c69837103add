#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""deploy/container/Containerfile checked without a container runtime (none runs here).

- every package the runtime stage installs exists in apt's lists;
- those packages hold every shared library the installed programs load (ldd, then dpkg -S), and
  the stage installs nothing else but bubblewrap (TOOLS_ISOLATION=bwrap needs it);
- every file the runtime stage copies from the build stage's staged install exists after
  `meson install` (of this build, when its prefix is the Containerfile's), and every file the
  build stage copies from the repository exists.

    container_test.py BUILD_DIR SOURCE_DIR
"""
import os
import re
import shlex
import subprocess
import sys
import tempfile

from checks import check, exit_status, meson_install, build_options

SKIP = 77
# Installed for what it runs, not for a library: `bwrap`, the bubblewrap isolation.
PROGRAM_PACKAGES = {"bubblewrap"}


def stages(text):
    """[(stage name, [instruction lines, continuations joined])]."""
    joined = re.sub(r"\\\n\s*", " ", text)
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            words = line.split()
            result.append((words[3] if len(words) > 3 and words[2].upper() == "AS" else "", []))
        elif result:
            result[-1][1].append(line)
    return result


def installed_packages(instructions):
    """The packages of every `apt-get install` in a stage's RUN lines."""
    packages = []
    for line in instructions:
        if not line.upper().startswith("RUN "):
            continue
        for command in re.split(r"&&|;", line[4:]):
            words = shlex.split(command)
            if "apt-get" in words and "install" in words:
                packages += [w for w in words[words.index("install") + 1:] if not w.startswith("-")]
    return packages


def copies(instructions):
    """(from stage or None, [sources], destination) of each COPY."""
    result = []
    for line in instructions:
        if not line.upper().startswith("COPY "):
            continue
        words = line.split()[1:]
        stage = None
        while words[0].startswith("--"):
            if words[0].startswith("--from="):
                stage = words[0][len("--from="):]
            words = words[1:]
        result.append((stage, words[:-1], words[-1]))
    return result


def packages_of(libraries):
    """{library path: Debian package}, trying each path as ldd printed it and as resolved (usr-merge),
    with one dpkg -S per form of the paths."""
    def forms(library):
        real = os.path.realpath(library)
        return dict.fromkeys([library, real, re.sub(r"^/usr/lib/", "/lib/", real), re.sub(r"^/lib/", "/usr/lib/", real)])

    owner = {}
    candidates = {library: list(forms(library)) for library in libraries}
    for round_ in range(4):
        paths = {c[round_]: library for library, c in candidates.items() if library not in owner and len(c) > round_}
        if not paths:
            break
        found = subprocess.run(["dpkg", "-S"] + sorted(paths), capture_output=True, text=True).stdout
        for line in found.splitlines():
            package, _, path = line.partition(": ")
            if path in paths:
                owner[paths[path]] = package.split(":")[0].split(",")[0].strip()
    return owner


def libraries_of(program):
    out = subprocess.run(["ldd", program], capture_output=True, text=True).stdout
    if "not a dynamic executable" in out or "statically linked" in out:
        return []
    return [m.group(1) for m in re.finditer(r"=>\s*(/\S+)", out)] + re.findall(r"^\s*(/\S+)\s+\(", out, re.M)


def main():
    build_dir, source_dir = sys.argv[1:3]
    with open(os.path.join(source_dir, "deploy/container/Containerfile")) as f:
        text = f.read()
    all_stages = stages(text)
    check(len(all_stages) == 2 and all_stages[0][0] == "build", "two stages: build, then the runtime")
    build, runtime = all_stages[0][1], all_stages[-1][1]
    runtime_packages = installed_packages(runtime)
    check("-Dtests=false" in text and "-Dbench=false" in text, "the build stage builds neither tests nor benchmarks")
    check(any("install-deps.sh" in line for line in build if line.upper().startswith("RUN ")),
          "the build stage installs its packages with scripts/install-deps.sh")

    ignore_path = os.path.join(source_dir, ".dockerignore")
    ignored = open(ignore_path).read().split() if os.path.exists(ignore_path) else []
    check("build*/" in ignored and ".git" in ignored, "the build context leaves out build trees and .git (.dockerignore)")

    if subprocess.run(["apt-cache", "show", "libc6"], capture_output=True).returncode != 0:
        print("SKIP: apt has no package lists here (run apt-get update)")
        return SKIP
    shown = subprocess.run(["apt-cache", "show", "--no-all-versions"] + runtime_packages, capture_output=True,
                           text=True).stdout
    known = set(re.findall(r"^Package: (\S+)$", shown, re.M))
    for package in runtime_packages:
        check(package in known, f"apt knows the runtime package {package}")

    value = build_options(build_dir)
    prefix = re.search(r"--prefix=(\S+)", text).group(1)
    with tempfile.TemporaryDirectory(prefix="pagi-container-") as work:
        staging = os.path.join(work, "staging")
        p = meson_install(build_dir, staging)
        programs = [os.path.join(p["bindir"], name) for name in ("tools-server", "pagi-exec")]
        programs.append(os.path.join(p["libexecdir"], "pagi-exec", "pagi-spawner"))
        libraries = sorted({library for program in programs for library in libraries_of(program)})
        owner = packages_of(libraries)
        needed = {}
        for library in libraries:
            needed.setdefault(owner.get(library), set()).add(os.path.basename(library))
        check(None not in needed, f"every library belongs to a package: {sorted(needed.get(None, []))}")
        needed.pop(None, None)
        if value.get("b_sanitize", "none") != "none":
            # A sanitized build (scripts/sanitize.sh) also loads the sanitizers' runtimes, which
            # no release build, and so no container, has.
            for runtime in [p for p in needed if p.startswith(("libasan", "libubsan", "liblsan", "libtsan"))]:
                print(f"note: {runtime} left out: this build is sanitized (b_sanitize={value['b_sanitize']})")
                needed.pop(runtime)
        missing = sorted(set(needed) - set(runtime_packages))
        check(not missing, f"the runtime stage installs every library package the programs load: missing "
                           f"{[(p, sorted(needed[p])) for p in missing]}")
        extra = sorted(set(runtime_packages) - set(needed) - PROGRAM_PACKAGES)
        check(not extra, f"and nothing else: {extra}")

        if value["prefix"] != prefix:
            print(f"SKIP part: this build's prefix is {value['prefix']}, the Containerfile's {prefix}: "
                  "its COPY sources are not checked against this install")
        for stage, sources, _ in copies(runtime) + copies(build):
            for source in sources:
                if stage == "build":
                    if value["prefix"] == prefix:
                        path = os.path.join(staging, os.path.relpath(source, "/staging"))
                        check(os.path.isfile(path), f"COPY --from=build {source} exists after meson install")
                else:
                    check(os.path.exists(os.path.join(source_dir, source)), f"COPY {source} exists in the repository")
    return exit_status()


if __name__ == "__main__":
    sys.exit(main())
