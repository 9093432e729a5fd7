"""Optional judging by any OpenAI-compatible endpoint (`--judge URL`), off by default.

The judge sees the question, the reference and one answer, and gives a score 1-10. Only
loopback URLs are accepted unless the user allows a remote judge explicitly: the eval data
may be private, and sending it off the machine must be a choice, not a default."""

from __future__ import annotations

import re
from typing import Optional
from urllib.parse import urlparse

from sage_ft_tui.engine.deploy.chat import Endpoint, api_error, make_client
from sage_ft_tui.engine.deploy.net import is_loopback
from sage_ft_tui.engine.errors import SageError

PROMPT = (
    "You are grading an answer against a reference answer.\n"
    "Question:\n{question}\n\nReference answer:\n{reference}\n\nAnswer to grade:\n{answer}\n\n"
    "Reply with one integer from 1 (wrong or unrelated) to 10 (as good as the reference), and nothing else."
)


def check_url(url: str, *, allow_remote: bool = False) -> str:
    u = urlparse(url.strip())
    if u.scheme not in ("http", "https") or not u.hostname:
        raise SageError(f"--judge {url!r} is not an http(s) URL", hint="e.g. --judge http://127.0.0.1:8000/v1")
    if not allow_remote and not is_loopback(u.hostname):
        raise SageError(
            f"--judge {url} is not on this machine, and the eval data would leave it",
            hint="pass --judge-remote as well if that is intended, or use a judge on 127.0.0.1",
        )
    base = url.strip().rstrip("/")
    return base if base.endswith("/v1") else base + "/v1"


def parse_score(text: str) -> Optional[int]:
    m = re.search(r"\b(10|[1-9])\b", text or "")
    return int(m.group(1)) if m else None


class Judge:
    def __init__(
        self,
        url: str,
        *,
        model: Optional[str] = None,
        api_key: Optional[str] = None,
        allow_remote: bool = False,
        timeout: float = 120.0,
    ):
        self.base_url = check_url(url, allow_remote=allow_remote)
        self.endpoint = Endpoint(base_url=self.base_url, model=model or "", api_key=api_key)
        self.client = make_client(self.endpoint, timeout=timeout)
        if not model:
            self.endpoint.model = self._first_model()

    def _first_model(self) -> str:
        try:
            models = [m.id for m in self.client.models.list()]
        except Exception as e:
            raise api_error(e, self.endpoint) from None
        if not models:
            raise SageError(f"the judge at {self.base_url} lists no model", hint="pass --judge-model NAME")
        return models[0]

    def score(self, question: str, reference: str, answer: str) -> Optional[int]:
        try:
            r = self.client.chat.completions.create(
                model=self.endpoint.model,
                messages=[
                    {"role": "user", "content": PROMPT.format(question=question, reference=reference, answer=answer)}
                ],
                temperature=0,
                max_tokens=8,
            )
        except Exception as e:
            raise api_error(e, self.endpoint) from None
        return parse_score(r.choices[0].message.content or "")
