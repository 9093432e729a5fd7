"""Scores of generated answers against references, from well-kept packages: ROUGE-L
(`rouge-score`, Google's implementation) and corpus BLEU / chrF (`sacrebleu`, the
reference implementation WMT uses). Exact match is ours: whitespace- and case-normalised."""

from __future__ import annotations


def _norm(s: str) -> str:
    return " ".join(s.lower().split())


def exact_match(preds: list[str], refs: list[str]) -> float:
    return sum(_norm(p) == _norm(r) for p, r in zip(preds, refs)) / len(refs) if refs else 0.0


def rouge_l(preds: list[str], refs: list[str]) -> float:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    if not refs:
        return 0.0
    return sum(scorer.score(r, p)["rougeL"].fmeasure for p, r in zip(preds, refs)) / len(refs)


def per_example_rouge_l(preds: list[str], refs: list[str]) -> list[float]:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    return [round(scorer.score(r, p)["rougeL"].fmeasure, 4) for p, r in zip(preds, refs)]


def bleu_chrf(preds: list[str], refs: list[str]) -> tuple[float, float]:
    import sacrebleu

    if not refs:
        return 0.0, 0.0
    bleu = sacrebleu.corpus_bleu(preds, [refs]).score
    chrf = sacrebleu.corpus_chrf(preds, [refs]).score
    return bleu, chrf


def score(preds: list[str], refs: list[str]) -> dict:
    """All metrics on a 0-100 scale (exact match and ROUGE-L as percentages)."""
    bleu, chrf = bleu_chrf(preds, refs)
    return {
        "exact_match": round(100 * exact_match(preds, refs), 2),
        "rouge_l": round(100 * rouge_l(preds, refs), 2),
        "bleu": round(bleu, 2),
        "chrf": round(chrf, 2),
    }
