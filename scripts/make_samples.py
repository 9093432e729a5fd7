"""Regenerates the bundled sample data (sage_ft_tui/samples/). Deterministic.

The rows are small, correct, learnable tasks (arithmetic, spelling, capitals, unit
conversion) so the tiny demo model's loss visibly falls; no filler text, and no row twice
(a copy trains twice and makes the inspector warn on every quickstart of the sample)."""

import csv
import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "sage_ft_tui" / "samples"
CAPITALS = {
    "France": "Paris",
    "Japan": "Tokyo",
    "Kenya": "Nairobi",
    "Canada": "Ottawa",
    "Brazil": "Brasília",
    "Australia": "Canberra",
    "Egypt": "Cairo",
    "India": "New Delhi",
    "Norway": "Oslo",
    "Peru": "Lima",
    "Spain": "Madrid",
    "Italy": "Rome",
    "Germany": "Berlin",
    "Chile": "Santiago",
    "Vietnam": "Hanoi",
    "Ghana": "Accra",
    "Poland": "Warsaw",
    "Portugal": "Lisbon",
    "Mexico": "Mexico City",
    "Turkey": "Ankara",
}
WORDS = [
    "python",
    "lantern",
    "river",
    "orbit",
    "garden",
    "silver",
    "pocket",
    "thunder",
    "marble",
    "candle",
    "harbor",
    "violet",
    "meadow",
    "rocket",
    "planet",
    "window",
    "forest",
    "mirror",
    "castle",
    "pepper",
]


def tasks(rng):
    a, b = rng.randint(2, 99), rng.randint(2, 99)
    w = rng.choice(WORDS)
    country = rng.choice(list(CAPITALS))
    km = rng.randint(1, 40)
    return rng.choice(
        [
            (f"What is {a} + {b}?", "", f"{a} + {b} = {a + b}."),
            (f"What is {a} times {b}?", "", f"{a} × {b} = {a * b}."),
            ("Reverse the word.", w, f"{w[::-1]}"),
            ("Write the word in capital letters.", w, w.upper()),
            (f"How many letters are in the word '{w}'?", "", f"'{w}' has {len(w)} letters."),
            (f"What is the capital of {country}?", "", f"The capital of {country} is {CAPITALS[country]}."),
            (f"Convert {km} kilometres to metres.", "", f"{km} km = {km * 1000} m."),
            ("Is the number even or odd?", str(a), f"{a} is {'even' if a % 2 == 0 else 'odd'}."),
        ]
    )


ROWS = 160


def unique_rows(rng, n: int) -> list[tuple[str, str, str]]:
    """`n` different rows: a draw that repeats an earlier row is drawn again."""
    rows: dict[tuple[str, str, str], None] = {}
    while len(rows) < n:
        rows.setdefault(tasks(rng))
    return list(rows)


def main():
    rng = random.Random(1234)
    OUT.mkdir(parents=True, exist_ok=True)
    rows = unique_rows(rng, ROWS)
    with open(OUT / "instruction_alpaca.jsonl", "w", encoding="utf-8") as fh:
        for ins, inp, outp in rows:
            fh.write(json.dumps({"instruction": ins, "input": inp, "output": outp}, ensure_ascii=False) + "\n")
    with open(OUT / "qa.jsonl", "w", encoding="utf-8") as fh:
        for ins, inp, outp in rows[:120]:
            rec = {"question": ins + (f" {inp}" if inp else ""), "answer": outp}
            if "capital of" in ins:
                rec["context"] = "Capitals are the seat of a country's government."
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    chats = []
    for i in range(0, 150, 3):
        msgs = [{"role": "system", "content": "You are a concise, exact assistant."}]
        for ins, inp, outp in rows[i : i + 3]:
            msgs.append({"role": "user", "content": ins + (f"\n{inp}" if inp else "")})
            msgs.append({"role": "assistant", "content": outp})
        chats.append({"messages": msgs})
    with open(OUT / "chat_messages.jsonl", "w", encoding="utf-8") as fh:
        for c in chats:
            fh.write(json.dumps(c, ensure_ascii=False) + "\n")
    share = [
        {
            "conversations": [
                {"from": "human", "value": ins + (f"\n{inp}" if inp else "")},
                {"from": "gpt", "value": outp},
            ]
        }
        for ins, inp, outp in rows[:80]
    ]
    (OUT / "chat_sharegpt.json").write_text(json.dumps(share, ensure_ascii=False, indent=1), encoding="utf-8")
    with open(OUT / "prompt_completion.csv", "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["prompt", "completion"])
        for ins, inp, outp in rows[:80]:
            w.writerow([ins + (f" {inp}" if inp else ""), outp])
    paras = []
    for c, cap in CAPITALS.items():
        paras.append(f"{cap} is the capital of {c}. People in {cap} often say the city feels like the heart of {c}.")
    for wd in WORDS:
        paras.append(
            f"The word {wd} has {len(wd)} letters; written backwards it is {wd[::-1]}, and in capitals {wd.upper()}."
        )
    (OUT / "text.txt").write_text("\n\n".join(paras) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
