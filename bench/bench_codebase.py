"""Repository → dataset figures: scan time and sample-building (tokenization) time for a
generated 10,000-file repository, in git mode (git ls-files) and walk mode (.gitignore
via pathspec), plus the samples and tokens produced. Prints figures; never pass/fail.

    python bench/bench_codebase.py [--files 10000] [--max-length 2048] [--model tiny-demo] [--fim-rate 0.5]

The generated repository: source files in 8 languages (Python, JS, TS, Go, Rust, Java,
C, Markdown; ~1-6 KB each), plus the things a scan must drop: 1% exact duplicates, a
node_modules/ and a .venv/ tree (git-ignored), PNGs, lock files, .env files and
source files with a planted token. Generation and `git add` are not timed.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sage_ft_tui.engine.data.code.samples import build_samples  # noqa: E402
from sage_ft_tui.engine.data.code.scan import scan_repository  # noqa: E402

BODY = {
    "py": (
        'def f_{i}_{j}(x: int, y: int) -> int:\n    """Step {j} of module {i}."""\n'
        "    total = x * {j} + y\n    for k in range({j}):\n        total += k % 7\n    return total\n\n\n"
    ),
    "js": "export function f_{i}_{j}(x, y) {{\n  let total = x * {j} + y;\n  for (let k = 0; k < {j}; k++) total += k % 7;\n  return total;\n}}\n\n",
    "ts": "export function f_{i}_{j}(x: number, y: number): number {{\n  let total = x * {j} + y;\n  return total + {j};\n}}\n\n",
    "go": "func F_{i}_{j}(x int, y int) int {{\n\ttotal := x*{j} + y\n\tfor k := 0; k < {j}; k++ {{\n\t\ttotal += k % 7\n\t}}\n\treturn total\n}}\n\n",
    "rs": "pub fn f_{i}_{j}(x: i64, y: i64) -> i64 {{\n    let mut total = x * {j} + y;\n    for k in 0..{j} {{ total += k % 7; }}\n    total\n}}\n\n",
    "java": "    static int f_{i}_{j}(int x, int y) {{\n        int total = x * {j} + y;\n        return total + {j};\n    }}\n\n",
    "c": "int f_{i}_{j}(int x, int y) {{\n    int total = x * {j} + y;\n    for (int k = 0; k < {j}; k++) total += k % 7;\n    return total;\n}}\n\n",
    "md": "## Section {j} of document {i}\n\nThis part explains step {j}: inputs, outputs and the edge cases.\n\n",
}


def generate(root: Path, n_files: int, seed: int = 0) -> dict:
    rng = random.Random(seed)
    exts = list(BODY)
    made = {"source": 0, "duplicate": 0, "secret": 0, "binary": 0, "lock": 0, "vendored": 0}
    contents = []
    for i in range(n_files):
        r = rng.random()
        d = root / f"pkg{i % 50}" / f"sub{i % 7}"
        d.mkdir(parents=True, exist_ok=True)
        if r < 0.01 and contents:
            ext, text = rng.choice(contents)
            (d / f"dup_{i}.{ext}").write_text(text)
            made["duplicate"] += 1
        elif r < 0.015:
            (d / f"settings_{i}.env").write_text(f"API_TOKEN=not-a-real-token-{i}\n")
            made["secret"] += 1
        elif r < 0.02:
            tok = "ghp_" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(36))
            (d / f"client_{i}.py").write_text(f"TOKEN = '{tok}'\n")
            made["secret"] += 1
        elif r < 0.03:
            (d / f"image_{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(2048))
            made["binary"] += 1
        elif r < 0.032:
            (d / "package-lock.json").write_text('{"lockfileVersion": 3}\n')
            made["lock"] += 1
        else:
            ext = exts[i % len(exts)]
            n_funcs = rng.randint(8, 40)
            text = f"// file {i}\n" if ext not in ("py", "md") else f"# file {i}\n"
            text += "".join(BODY[ext].format(i=i, j=j) for j in range(n_funcs))
            (d / f"mod_{i}.{ext}").write_text(text)
            if len(contents) < 200:
                contents.append((ext, text))
            made["source"] += 1
    for vend in ("node_modules/lib", ".venv/lib/site-packages/pkg"):
        vd = root / vend
        vd.mkdir(parents=True, exist_ok=True)
        for k in range(200):
            (vd / f"v{k}.js").write_text("module.exports = 1;\n")
            made["vendored"] += 1
    (root / ".gitignore").write_text("node_modules/\n.venv/\n")
    return made


def git_init(root: Path) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "b",
        "GIT_AUTHOR_EMAIL": "b@example.invalid",
        "GIT_COMMITTER_NAME": "b",
        "GIT_COMMITTER_EMAIL": "b@example.invalid",
    }
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "bench"]):
        subprocess.run(["git", *args], cwd=root, env=env, check=True, stdout=subprocess.DEVNULL)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--max-length", type=int, default=2048)
    ap.add_argument(
        "--model", default="tiny-demo", help="tokenizer of this model (tiny-demo, a folder, a cached hub id)"
    )
    ap.add_argument("--fim-rate", type=float, default=0.5)
    ap.add_argument("--keep", action="store_true", help="keep the generated repository")
    args = ap.parse_args()

    from sage_ft_tui.engine.data.template import ChatTokenizer
    from sage_ft_tui.engine.models.resolve import model_dir

    tok = ChatTokenizer(model_dir(args.model))
    tmp = Path(tempfile.mkdtemp(prefix="bench_codebase."))
    try:
        repo = tmp / "repo"
        t = time.perf_counter()
        made = generate(repo, args.files)
        size = sum(p.stat().st_size for p in repo.rglob("*") if p.is_file())
        print(
            f"generated {args.files:,} files + {made['vendored']} vendored ({size / 1e6:.1f} MB) in "
            f"{time.perf_counter() - t:.1f} s: {made}"
        )

        walk = scan_repository(repo, keep_text=True)  # no .git yet: the walk path
        print(
            f"scan (walk + .gitignore): {walk.seconds:.2f} s, {len(walk.files):,} files taken, "
            f"skipped {walk.skipped_by_reason}"
        )
        git_init(repo)
        scans = [scan_repository(repo, keep_text=True) for _ in range(3)]
        scan = scans[-1]
        best = min(s.seconds for s in scans)
        print(
            f"scan (git ls-files):      {best:.2f} s best of 3 ({', '.join(f'{s.seconds:.2f}' for s in scans)}), "
            f"{len(scan.files):,} files, {scan.total_bytes / 1e6:.1f} MB taken, skipped {scan.skipped_by_reason}"
        )

        samples = build_samples(scan, tok, max_length=args.max_length, fim_rate=args.fim_rate, seed=42)
        print(
            f"samples (chunk + tokenize, {args.model}, max_length {args.max_length}, fim {samples.fim}): "
            f"{samples.seconds:.2f} s → {len(samples.records):,} samples ({samples.fim_samples:,} FIM), "
            f"{samples.tokens:,} tokens, {samples.tokens / max(samples.seconds, 1e-9) / 1e6:.2f} M tokens/s"
        )
        print(f"total scan + build: {best + samples.seconds:.2f} s")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
