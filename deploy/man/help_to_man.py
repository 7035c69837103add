#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Writes a program's man page from its --help with help2man, adding one section per subcommand.

help2man reads only `PROGRAM --help`; a CLI11 program's subcommands print their own options
(`PROGRAM SUB --help`), which are turned into a SUBCOMMANDS section here, in the same form, so
that every flag and its environment variable appear in the page.

    help_to_man.py HELP2MAN OUTPUT NAME VERSION PROGRAM [SUBCOMMAND ...]
"""
import os
import re
import subprocess
import sys
import tempfile

ENTRY = re.compile(r"^  (\S.*?)(?: {2,}(\S.*))?$")


def roff(text):
    return text.replace("\\", "\\e").replace("-", "\\-")


def sub_help(program, sub):
    name = os.path.basename(program)  # as argv[0]: the usage line names the program, not the build tree
    return subprocess.run([name, sub, "--help"], executable=program, check=True, capture_output=True,
                          text=True).stdout


def section(program, sub):
    """`PROGRAM SUB --help` as a roff subsection: its description, then each option as a tagged paragraph."""
    lines = sub_help(program, sub).splitlines()
    out = [f'.SS "{roff(os.path.basename(program))} {roff(sub)}"']
    in_list = False
    for line in lines:
        if not line.strip() or line.startswith("Usage:"):
            continue
        if line.endswith(":") and not line.startswith(" "):  # "Options:", "Positionals:"
            out.append(f".PP\n\\fI{roff(line[:-1])}\\fR")
            in_list = True
            continue
        entry = ENTRY.match(line) if in_list else None
        if entry:
            out.append(f".TP\n\\fB{roff(entry.group(1))}\\fR")
            if entry.group(2):
                out.append(roff(entry.group(2)))
        else:
            out.append(roff(line.strip()) if in_list else f".PP\n{roff(line.strip())}")
    return "\n".join(out)


def main():
    help2man, output, name, version, program, *subs = sys.argv[1:]
    with tempfile.NamedTemporaryFile("w", suffix=".h2m") as include:
        if subs:
            include.write("[SUBCOMMANDS]\n")
            include.write("\n".join(section(program, sub) for sub in subs) + "\n")
        include.write("[SEE ALSO]\nThe README, docs/policy.md and docs/audit.md of pagi\\-exec.\n")
        include.flush()
        # help2man runs the program by the name it is given: found on PATH, so the usage line shows no build path.
        env = dict(os.environ, PATH=os.path.dirname(os.path.abspath(program)) + os.pathsep + os.environ.get("PATH", ""))
        subprocess.run([help2man, "--no-info", "--no-discard-stderr", f"--name={name}",
                        f"--version-string={version}", f"--include={include.name}", f"--output={output}",
                        os.path.basename(program)], check=True, env=env)
    # Variable names are never hyphenated (\% before the word): TOOLS_MAX_CONNEC-TION_... cannot be
    # searched for.
    with open(output) as page:
        text = page.read()
    with open(output, "w") as page:
        page.write(text.replace("(Env:", "\\%(Env:"))


if __name__ == "__main__":
    main()
