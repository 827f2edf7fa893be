"""Every fenced code block of README.md and docs/*.md is run or checked, so
that the documentation cannot drift from the code (issue 14).

Usage: docs_examples.py IMBENCH SOURCE_DIR [--only FILE.md] [--list]

Each block is classified by an HTML comment on the line right before its
fence (other comments may stand between them):

  <!-- example: run -->           run it (shell: one bash script with set -e;
                                  python: python3) in the file's sandbox
  <!-- example: run; short -->    the same with smaller work: `imbench train`
                                  gets --epochs 1, `attack` and `eval` at most
                                  --examples 100 (every flag is still checked, and
                                  the checkpoints they write feed later lines);
                                  a toml matrix runs with examples at most 100
                                  and its models' train epochs at 1
  <!-- example: run; dry-run: PATTERN, PATTERN -->
                                  run, but the lines containing a pattern are
                                  dry-run lines (below)
  <!-- example: dry-run -->       `imbench train|attack|run|eval` lines get
                                  --dry-run (every option, the matrix, the model
                                  files and the data are checked, nothing runs);
                                  other imbench lines get --help, which still
                                  rejects an unknown command, flag or bad value
                                  (parse-only); other lines run as written
  <!-- example: check: REASON --> syntax only (python: py_compile; json: parsed)
  <!-- example: skip: REASON -->  not run; REASON is required and printed

Without a comment, a toml block is a dry-run (written to a file and checked
by `imbench run FILE --dry-run`) and a json block is parsed; any other block
is unclassified and fails the test with FILE:LINE.

Blocks run in document order, one sandbox per Markdown file: build/imbench
(the binary under test), benchmarks/, scripts/, zoo/ and reports/ mirrored
from the repository (large files linked, the rest copied, so nothing writes
into the tree), checkpoints/ with the repository's quick checkpoints when
there are any, my_model.pt (tests/fixtures/docs), results.h5 and results.csv
(a small attack on tests/fixtures/engine), a data directory with the
fetched MNIST ($IMBENCH_DATA_DIR) and ../shared/data/cifar10-subset (a
small synthetic CIFAR-10 folder). Files an earlier block writes (det.ckpt)
are there for later blocks of the same file. Exit 77 (skipped) when MNIST
has not been fetched.
"""
import json
import os
import py_compile
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

DRY_RUN_COMMANDS = {"train", "attack", "run", "eval"}
MODES = {"run", "dry-run", "check", "skip"}
BLOCK_TIMEOUT = 480  # seconds per block (about 60 s for the longest on a quiet 2-core machine)
# Python blocks run with the python the other CLI tests use (Debian's, with h5py and pandas).
PYTHON = os.environ.get("IMBENCH_PYTHON") or ("/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable)
NOT_RUN = "NOT RUN HERE"
SHORT_EPOCHS = 1
SHORT_LIMIT = 100
EXAMPLE_COMMENT = re.compile(r"^\s*<!--\s*example:\s*(.*?)\s*-->\s*$")
ANY_COMMENT = re.compile(r"^\s*<!--.*-->\s*$")
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([^`\s]*)")


class Block:
    def __init__(self, path, line, lang, lines, annotation):
        self.path, self.line, self.lang, self.lines, self.annotation = path, line, lang, lines, annotation
        self.mode, self.reason, self.short, self.dry_patterns, self.error = None, "", False, [], ""
        self.where = f"{path}:{line}"


def extract(path, rel):
    """The fenced blocks of a Markdown file: (line of the opening fence, info word, content lines, annotation)."""
    with open(path, encoding="utf-8") as f:
        text = f.read().split("\n")
    blocks, i, used = [], 0, set()
    while i < len(text):
        m = FENCE.match(text[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = m.group(1), m.group(2), m.group(3).lower()
        start, body = i, []
        i += 1
        while i < len(text) and not re.match(r"^\s*" + re.escape(fence[0]) + "{" + str(len(fence)) + r",}\s*$", text[i]):
            body.append(text[i][len(indent):] if text[i].startswith(indent) else text[i].lstrip())
            i += 1
        i += 1
        annotation, j = None, start - 1
        while j >= 0 and ANY_COMMENT.match(text[j]):
            c = EXAMPLE_COMMENT.match(text[j])
            if c:
                annotation = c.group(1)
                break
            j -= 1
        blocks.append(Block(rel, start + 1, lang, body, annotation))
        if annotation is not None:
            used.add(j)
    # An example comment that precedes no fence classifies nothing: an error at its line.
    for k, line in enumerate(text):
        if EXAMPLE_COMMENT.match(line) and k not in used:
            orphan = Block(rel, k + 1, "", [], None)
            orphan.error = f"{rel}:{k + 1}: this example comment is not right before a code fence"
            blocks.append(orphan)
    return blocks


def classify(b):
    if b.error:
        return
    if b.annotation is None:
        if b.lang == "toml":
            b.mode = "dry-run"
        elif b.lang == "json":
            b.mode, b.reason = "check", "JSON: parsed"
        else:
            b.error = (f"{b.where}: unclassified {b.lang or 'untagged'} block; put "
                       "<!-- example: run|dry-run|check: REASON|skip: REASON --> on the line before it")
        return
    mode, _, reason = b.annotation.partition(":")
    parts = [mode.strip()]
    if mode.strip() in ("skip", "check"):
        reason = reason.strip()  # the reason is the rest, ';' included
    else:
        parts = [p.strip() for p in b.annotation.split(";")]
        mode, _, reason = parts[0].partition(":")
    b.mode, b.reason = mode.strip(), reason.strip()
    if b.mode not in MODES:
        b.error = f"{b.where}: unknown example mode '{b.mode}' (known: {', '.join(sorted(MODES))})"
    elif b.mode in ("skip", "check") and not b.reason:
        b.error = f"{b.where}: '{b.mode}' needs a reason: <!-- example: {b.mode}: WHY -->"
    for p in parts[1:]:
        key, _, value = p.partition(":")
        key = key.strip()
        if key == "short" and b.mode == "run":
            b.short = True
        elif key == "dry-run" and b.mode == "run" and value.strip():
            b.dry_patterns = [v.strip() for v in value.split(",") if v.strip()]
        else:
            b.error = f"{b.where}: unknown example option '{p}' for mode '{b.mode}'"


def logical_lines(lines, first):
    """Joins backslash continuations: [(doc line of the first part, text)]."""
    out, buf, at = [], "", None
    for k, line in enumerate(lines):
        if at is None:
            at = first + k
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        out.append((at, buf + line))
        buf, at = "", None
    if at is not None:
        out.append((at, buf))
    return out


IMBENCH_LINE = re.compile(r"^(\s*(?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*)build/imbench\s+(\S+)(.*)$")


def strip_comment(text):
    """A trailing ` # comment` (the docs' explanations), outside quotes."""
    quote = None
    for k, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (k == 0 or text[k - 1] in " \t"):
            return text[:k].rstrip()
    return text.rstrip()


def with_limit(cmd):
    """--examples N (or the old --limit N) capped at SHORT_LIMIT, or --examples SHORT_LIMIT added."""
    m = re.search(r"(--(?:limit|examples)[ =])(\d+)", cmd)
    if m:
        n = min(int(m.group(2)), SHORT_LIMIT) if int(m.group(2)) > 0 else SHORT_LIMIT
        return cmd[:m.start(2)] + str(n) + cmd[m.end(2):], True
    return cmd + f" --examples {SHORT_LIMIT}", True


def transform(b, text):
    """The shell line to run for a documented line, and how it was treated."""
    code = strip_comment(text)
    m = IMBENCH_LINE.match(code)
    if not m:
        return code, "as written"
    command = m.group(2)
    dry = b.mode == "dry-run" or any(p in text for p in b.dry_patterns)
    if dry:
        if command in DRY_RUN_COMMANDS:
            return code + ("" if re.search(r"\s--dry-run\b", code) else " --dry-run"), "dry-run"
        return code + " --help >/dev/null", "parse-only"
    if b.short and command == "train":
        if re.search(r"--epochs[ =]\d+", code):
            return re.sub(r"(--epochs[ =])\d+", rf"\g<1>{SHORT_EPOCHS}", code), "short"
        return code + f" --epochs {SHORT_EPOCHS}", "short"
    if b.short and command in ("attack", "eval") and "--list" not in code:
        return with_limit(code)[0], "short"
    return code, "run"


def short_matrix(lines):
    """A matrix block with smaller work and the same lines: the top-level
    `examples` at most SHORT_LIMIT (a line of its own keeps line numbers),
    training overrides `epochs` at SHORT_EPOCHS."""
    out, top, seen = [], True, False
    for line in lines:
        if line.startswith("["):
            top = False
        m = re.match(r"^(examples\s*=\s*)(\d+)", line)
        if top and m:
            n = int(m.group(2))
            line = m.group(1) + str(min(n, SHORT_LIMIT) if n > 0 else SHORT_LIMIT) + line[m.end(2):]
            seen = True
        line = re.sub(r"(\bepochs\s*=\s*)\d+", rf"\g<1>{SHORT_EPOCHS}", line) if line.startswith("train") else line
        out.append(line)
    if not seen:
        first_table = next((i for i, l in enumerate(out) if l.startswith("[")), len(out))
        out.insert(first_table, f"examples = {SHORT_LIMIT}")  # shifts later lines by one in error messages
    return out


def shell_script(b):
    """A bash script of the block; script line -> doc line; the treatment of each imbench line."""
    script = ["set -eo pipefail", "trap 'echo \"@@docline $LINENO\" >&2' ERR"]
    where, treated = {}, []
    for at, text in logical_lines(b.lines, b.line + 1):
        line, how = transform(b, text)
        if IMBENCH_LINE.match(strip_comment(text)):
            treated.append(how)
        script.append(line)
        where[len(script)] = at
    return "\n".join(script) + "\n", where, treated


def run_process(argv, cwd, env, log):
    """Runs a block in a process group of its own; a block that times out, or
    a test that is stopped, takes the whole group (the imbench the block's
    shell started too) with it."""
    with open(log, "w") as out:
        p = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            return p.wait(timeout=BLOCK_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            out.write(f"\n(timed out after {BLOCK_TIMEOUT} s)\n")
            return 124
        except BaseException:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            raise


def tail(log, n=15):
    with open(log, errors="replace") as f:
        lines = [l for l in f.read().split("\n") if not l.startswith("@@docline")]
    return "\n".join("  | " + l for l in lines[-n:] if l.strip())


def run_block(b, sandbox, env, logs):
    """Runs or checks one block; returns (failure message or None, detail for the summary)."""
    log = os.path.join(logs, f"{b.path.replace('/', '_')}-{b.line}.log")
    if b.mode == "check":
        try:
            if b.lang == "json":
                json.loads("\n".join(b.lines))
            elif b.lang == "python":
                src = os.path.join(logs, f"check-{b.line}.py")
                with open(src, "w") as f:
                    f.write("\n".join(b.lines) + "\n")
                py_compile.compile(src, doraise=True)
            else:
                return f"{b.where}: no syntax check for a {b.lang or 'untagged'} block", ""
        except (ValueError, py_compile.PyCompileError) as e:
            return f"{b.where}: {b.lang} does not parse: {e}", ""
        return None, f"{b.lang} syntax"
    if b.lang == "toml":
        name = f"doc-example-{b.line}.toml"
        with open(os.path.join(sandbox, name), "w") as f:
            f.write("\n".join(short_matrix(b.lines) if b.short else b.lines) + "\n")
        argv = ["build/imbench", "run", name] + (["--dry-run"] if b.mode == "dry-run" else ["--quiet"])
        rc = run_process(argv, sandbox, env, log)
        if rc != 0:
            text = open(log, errors="replace").read()
            # "doc-example-N.toml:4: key: ..." -> the line in the Markdown file.
            m = re.search(re.escape(name) + r":(\d+):", text)
            at = f"{b.path}:{b.line + int(m.group(1))}" if m else b.where
            errors = re.findall(r"^imbench: error: .*$", text, re.M)
            return (f"{at}: `imbench {' '.join(argv[1:])}` of the toml block exited {rc}"
                    f"{': ' + errors[-1] if errors else ''}\n{tail(log)}"), ""
        return None, "imbench run --dry-run" if b.mode == "dry-run" else "imbench run"
    if b.lang == "python":
        missing = [mod for mod in ("h5py", "pandas") if re.search(rf"^\s*import {mod}\b", "\n".join(b.lines), re.M)
                   and subprocess.run([PYTHON, "-c", f"import {mod}"], capture_output=True).returncode != 0]
        if missing:
            return None, f"{NOT_RUN}: {PYTHON} has no {', '.join(missing)} (scripts/setup.sh installs it)"
        src = os.path.join(sandbox, f"doc-example-{b.line}.py")
        with open(src, "w") as f:
            f.write("\n".join(b.lines) + "\n")
        rc = run_process([PYTHON, src], sandbox, env, log)
        if rc != 0:
            return f"{b.where}: the python block exited {rc}\n{tail(log)}", ""
        return None, PYTHON
    if b.lang in ("sh", "bash", "shell", "console", ""):
        script, where, treated = shell_script(b)
        path = os.path.join(logs, f"{b.path.replace('/', '_')}-{b.line}.sh")
        with open(path, "w") as f:
            f.write(script)
        rc = run_process(["bash", path], sandbox, env, log)
        if rc != 0:
            text = open(log, errors="replace").read()
            lines = re.findall(r"@@docline (\d+)", text)
            at = f"{b.path}:{where[int(lines[-1])]}" if lines and int(lines[-1]) in where else b.where
            errors = re.findall(r"^imbench: error: .*$", text, re.M)
            return f"{at}: exited {rc}{': ' + errors[-1] if errors else ''}\n{tail(log)}", ""
        counts = {k: treated.count(k) for k in ("run", "short", "dry-run", "parse-only") if treated.count(k)}
        return None, ", ".join(f"{n} {k}" for k, n in counts.items()) + " imbench line(s)"
    return f"{b.where}: cannot run a {b.lang} block; mark it check or skip", ""


def mirror(src, dst):
    """Copies a tree, linking files over 256 KiB (checkpoints, HDF5 files)."""
    for root, dirs, files in os.walk(src):
        rel = os.path.relpath(root, src)
        os.makedirs(os.path.join(dst, rel), exist_ok=True)
        for name in files:
            s, d = os.path.join(root, name), os.path.join(dst, rel, name)
            if os.path.getsize(s) > 256 * 1024:
                os.symlink(s, d)
            else:
                shutil.copy2(s, d)


def synthetic_cifar10(folder, per_file=10):
    os.makedirs(folder, exist_ok=True)
    record = bytes([3]) + bytes(range(256)) * 12  # a label byte + 3072 pixel bytes
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        with open(os.path.join(folder, name), "wb") as f:
            f.write(record * per_file)


def prepare(base, src, imbench, mnist_dir, shared):
    """The sandbox of one Markdown file: base/repo (the working directory), base/data, base/shared."""
    repo = os.path.join(base, "repo")
    os.makedirs(os.path.join(repo, "build"))
    os.symlink(os.path.abspath(imbench), os.path.join(repo, "build", "imbench"))
    for d in ("benchmarks", "scripts", "zoo", "reports"):
        mirror(os.path.join(src, d), os.path.join(repo, d))
    quick = os.path.join(src, "checkpoints")
    if os.path.isdir(quick):
        os.makedirs(os.path.join(repo, "checkpoints"))
        for name in os.listdir(quick):
            if name.endswith("-quick.ckpt"):
                os.symlink(os.path.join(quick, name), os.path.join(repo, "checkpoints", name))
    for name in ("my_model.pt", "results.h5", "results.csv", "a.h5"):
        shutil.copy2(os.path.join(shared, name), os.path.join(repo, name))
    data = os.path.join(base, "data", "mnist")
    os.makedirs(data)
    for name in os.listdir(mnist_dir):
        os.symlink(os.path.join(mnist_dir, name), os.path.join(data, name))
    synthetic_cifar10(os.path.join(base, "shared", "data", "cifar10-subset"))
    return repo, os.path.join(base, "data")


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwinds through run_process, which stops the block
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
    if only:
        args.remove(only)
    if len(args) != 2:
        print(__doc__)
        return 2
    imbench, src = os.path.abspath(args[0]), os.path.abspath(args[1])
    files = ["README.md"] + sorted("docs/" + f for f in os.listdir(os.path.join(src, "docs")) if f.endswith(".md"))
    if only:
        files = [f for f in files if f == only]
    blocks = {f: extract(os.path.join(src, f), f) for f in files}
    for bs in blocks.values():
        for b in bs:
            classify(b)
    if "--list" in sys.argv:
        for bs in blocks.values():
            for b in bs:
                print(f"{b.where}: {b.lang or 'untagged'}: {b.mode or 'UNCLASSIFIED'}"
                      f"{' (' + b.reason + ')' if b.reason else ''}{' short' if b.short else ''}"
                      f"{' dry-run lines: ' + ', '.join(b.dry_patterns) if b.dry_patterns else ''}")
        return 0

    data_dir = os.environ.get("IMBENCH_DATA_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "imbench")
    mnist = os.path.join(data_dir, "mnist")
    if not os.path.isfile(os.path.join(mnist, "train-images-idx3-ubyte")):
        print(f"SKIP: MNIST not found in {mnist} (run 'imbench data fetch')")
        return 77

    tmp = tempfile.mkdtemp(prefix="imbench-docs-")
    failures, counts, skipped, details, unavailable = [], {m: 0 for m in MODES}, [], [], []
    started = time.time()
    try:
        shared = os.path.join(tmp, "given")
        os.makedirs(shared)
        shutil.copy2(os.path.join(src, "tests", "fixtures", "docs", "my_model.pt"), shared)
        # results.h5 / results.csv / a.h5 (with adversarial examples) for the blocks of docs/results-h5.md.
        env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
        fixture = os.path.join(src, "tests", "fixtures", "engine", "det.ckpt")
        for argv in ([imbench, "attack", "--model", fixture, "--dataset", "synthetic", "--examples", "20", "--attack",
                      "fgsm,pgd", "--eps", "0.1", "--steps", "5", "--threads", "2", "--out", "results.h5"],
                     [imbench, "export", "results.h5", "--out", "results.csv"],
                     [imbench, "attack", "--model", fixture, "--dataset", "synthetic", "--examples", "20", "--attack",
                      "pgd", "--eps", "0.3", "--steps", "5", "--threads", "2", "--save-adversarial", "--out", "a.h5"]):
            p = subprocess.run(argv, cwd=shared, env=env, capture_output=True, text=True)
            if p.returncode != 0:
                print(f"FAIL: preparing the sandbox: {' '.join(argv[1:])}: {p.stdout}{p.stderr}")
                return 1
        for f in files:
            bs = [b for b in blocks[f] if not only or f == only]
            for b in bs:
                if b.error:
                    failures.append(b.error)
            runnable = [b for b in bs if not b.error and b.mode != "skip"]
            for b in bs:
                if not b.error and b.mode == "skip":
                    counts["skip"] += 1
                    skipped.append(f"{b.where}: {b.reason}")
            if not runnable:
                continue
            base = os.path.join(tmp, f.replace("/", "_").replace(".md", ""))
            repo, data = prepare(base, src, imbench, mnist, shared)
            # `python3` in a shell example is the one with NumPy and h5py (PYTHON).
            bindir = os.path.join(base, "bin")
            os.makedirs(bindir, exist_ok=True)
            os.symlink(PYTHON, os.path.join(bindir, "python3"))
            env_f = dict(env, IMBENCH_DATA_DIR=data, PATH=bindir + os.pathsep + env.get("PATH", ""))
            env_f.pop("IMBENCH_CIFAR10_DIR", None)
            logs = os.path.join(base, "logs")
            os.makedirs(logs)
            for b in runnable:
                t0 = time.time()
                failure, detail = run_block(b, repo, env_f, logs)
                took = time.time() - t0
                if failure:
                    failures.append(failure)
                    print(f"FAIL: {failure}", flush=True)
                    continue
                if detail.startswith(NOT_RUN):
                    unavailable.append(f"{b.where}: {detail}")
                    continue
                counts[b.mode] += 1
                details.append(f"{b.where}: {b.mode}{' (short)' if b.short else ''}: {detail} ({took:.1f} s)")
                print(f"ok: {details[-1]}", flush=True)
    finally:
        if os.environ.get("IMBENCH_DOCS_KEEP"):
            print(f"sandboxes kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print(f"\ndocs_examples: {sum(len(bs) for bs in blocks.values())} blocks in {len(files)} files: "
          f"{counts['run']} run, {counts['dry-run']} dry-run, {counts['check']} checked (syntax), "
          f"{counts['skip']} skipped{f', {len(unavailable)} not run here' if unavailable else ''}; "
          f"{time.time() - started:.0f} s")
    for s in skipped:
        print(f"  skipped {s}")
    for s in unavailable:
        print(f"  not run on this machine: {s}")
    if failures:
        print(f"\n{len(failures)} documented example(s) failed:")
        for f in failures:
            print(f"  {f.splitlines()[0]}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
